/// marketing-intake's OpenAPI 3.1 document, served at `/openapi.json` and checked by schemathesis in `make test`
/// (no 5xx for any generated input; every response matches this document).
enum IntakeOpenAPI {
    static let document = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Funnel marketing-intake",
    "version": "1.0.0",
    "description": "Campaign leads in (forms, ad-platform webhooks), campaign spend, and lead stats with cost per lead. Errors are RFC 9457 problem+json with a stable code."
  },
  "components": {
    "securitySchemes": {
      "sourceKey": {"type": "http", "scheme": "bearer", "description": "a lead source's API key, fnl_<prefix>_<secret>"},
      "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
      "admin": {"type": "http", "scheme": "bearer", "description": "FUNNEL_ADMIN_TOKEN"}
    },
    "schemas": {
      "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
          "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
          "code": {"type": "string"}, "instance": {"type": "string"},
          "errors": {"type": "array", "items": {"type": "object", "required": ["field", "code", "detail"],
            "properties": {"field": {"type": "string"}, "code": {"type": "string"}, "detail": {"type": "string"}}}}
        }
      },
      "Utm": {"type": "object", "properties": {"source": {"type": "string"}, "medium": {"type": "string"}, "campaign": {"type": "string"},
        "term": {"type": "string"}, "content": {"type": "string"}}},
      "CampaignLead": {
        "type": "object",
        "description": "At least one of phone, email, wechat. snake_case or camelCase keys.",
        "properties": {
          "channel": {"type": "string", "enum": ["sem", "feed", "seo", "landing-page", "chat", "referral", "other"]},
          "platform_lead_id": {"type": "string", "maxLength": 128}, "campaign_id": {"type": "string", "maxLength": 128},
          "ad_group_id": {"type": "string", "maxLength": 128}, "ad_id": {"type": "string", "maxLength": 128},
          "keyword": {"type": "string", "maxLength": 256}, "utm": {"$ref": "#/components/schemas/Utm"},
          "landing_url": {"type": "string", "format": "uri"}, "referrer_url": {"type": "string", "format": "uri"},
          "name": {"type": "string", "maxLength": 100}, "phone": {"type": "string", "maxLength": 64},
          "email": {"type": "string", "maxLength": 254}, "wechat": {"type": "string", "maxLength": 64},
          "course_interest": {"type": "string", "maxLength": 128}, "note": {"type": "string", "maxLength": 2000},
          "is_test": {"type": "boolean"}, "occurred_at": {"type": "string", "format": "date-time"}, "click_id": {"type": "string"}
        }
      },
      "LeadAccepted": {"type": "object", "required": ["lead_id", "status"],
        "properties": {"lead_id": {"type": "string", "format": "uuid"}, "status": {"type": "string", "enum": ["accepted", "duplicate"]}}},
      "WebhookResults": {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {"type": "object",
        "required": ["status"], "properties": {"lead_id": {"type": "string"}, "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
        "code": {"type": "string"}, "detail": {"type": "string"}}}}}},
      "GoogleAdsLead": {
        "type": "object", "required": ["lead_id", "google_key"],
        "properties": {
          "lead_id": {"type": "string"}, "api_version": {"type": "string"}, "form_id": {"type": ["integer", "string"]},
          "campaign_id": {"type": ["integer", "string"]}, "adgroup_id": {"type": ["integer", "string"]}, "creative_id": {"type": ["integer", "string"]},
          "gcl_id": {"type": "string"}, "google_key": {"type": "string"}, "is_test": {"type": "boolean"},
          "user_column_data": {"type": "array", "items": {"type": "object", "properties": {"column_id": {"type": "string"},
            "column_name": {"type": "string"}, "string_value": {"type": "string"}}}}
        }
      },
      "CampaignCost": {
        "type": "object", "required": ["channel", "campaign_id", "day", "spend_minor"],
        "properties": {
          "channel": {"type": "string", "enum": ["sem", "feed", "seo", "landing-page", "chat", "referral", "other"]},
          "campaign_id": {"type": "string", "minLength": 1, "maxLength": 128}, "day": {"type": "string", "format": "date"},
          "spend_minor": {"type": "integer", "minimum": 0, "description": "spend in the currency's minor unit (fen)"},
          "currency": {"type": "string"}, "impressions": {"type": "integer", "minimum": 0}, "clicks": {"type": "integer", "minimum": 0},
          "reported_by": {"type": "string", "maxLength": 128}
        }
      },
      "LeadSource": {"type": "object", "required": ["id", "name", "default_channel", "key_prefix", "created_at", "disabled"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "default_channel": {"type": "string"}, "key_prefix": {"type": "string"},
          "created_at": {"type": "string"}, "disabled": {"type": "boolean"}}},
      "IssuedKey": {"type": "object", "required": ["source", "api_key"], "properties": {"source": {"$ref": "#/components/schemas/LeadSource"},
        "api_key": {"type": "string"}}},
      "FieldMapping": {"type": "object", "required": ["fields"], "properties": {"records": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}, "constants": {"type": "object", "additionalProperties": {"type": "string"}}}},
      "WebhookSettings": {"type": "object", "required": ["source_id", "secrets", "secret_fingerprints", "google_key", "urls"],
        "properties": {"source_id": {"type": "string"}, "secrets": {"type": "integer"}, "secret_fingerprints": {"type": "array", "items": {"type": "string"}},
          "google_key": {"type": "boolean"}, "field_mapping": {"$ref": "#/components/schemas/FieldMapping"},
          "urls": {"type": "object", "additionalProperties": {"type": "string"}}, "new_secret": {"type": "string"}}},
      "LeadStats": {"type": "object", "required": ["from", "to", "time_zone", "currency", "group_by", "rows"],
        "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "time_zone": {"type": "string"}, "currency": {"type": "string"},
          "group_by": {"type": "array", "items": {"type": "string"}},
          "rows": {"type": "array", "items": {"type": "object", "required": ["leads", "test_leads", "duplicates", "spend_minor", "cost_per_lead_minor"],
            "properties": {"day": {"type": "string"}, "channel": {"type": "string"}, "campaign_id": {"type": "string"}, "leads": {"type": "integer"},
              "test_leads": {"type": "integer"}, "duplicates": {"type": "integer"}, "spend_minor": {"type": "integer"},
              "cost_per_lead_minor": {"type": ["integer", "null"]}}}}}}
    },
    "responses": {
      "Problem": {"description": "problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
      "Accepted": {"description": "accepted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LeadAccepted"}}}}
    },
    "parameters": {
      "sourceID": {"name": "source", "in": "path", "required": true, "schema": {"type": "string"}},
      "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}
    }
  },
  "paths": {
    "/v1/leads": {"post": {
      "summary": "Post one lead (landing-page form)", "security": [{"sourceKey": []}, {"apiKeyHeader": []}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CampaignLead"}}}},
      "responses": {"202": {"$ref": "#/components/responses/Accepted"}, "200": {"$ref": "#/components/responses/Accepted"},
        "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"},
        "415": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}, "429": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/webhooks/{source}": {"post": {
      "summary": "Standard Webhooks lead push (CampaignLead JSON, or the platform's JSON through the source's field mapping)",
      "parameters": [{"$ref": "#/components/parameters/sourceID"},
        {"name": "webhook-id", "in": "header", "schema": {"type": "string"}}, {"name": "webhook-timestamp", "in": "header", "schema": {"type": "string"}},
        {"name": "webhook-signature", "in": "header", "schema": {"type": "string"}}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {}}}},
      "responses": {"202": {"$ref": "#/components/responses/Accepted"},
        "200": {"description": "a duplicate, or the results of a delivery of several leads", "content": {"application/json": {"schema": {"oneOf": [
          {"$ref": "#/components/schemas/LeadAccepted"}, {"$ref": "#/components/schemas/WebhookResults"}]}}}},
        "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"},
        "415": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}, "429": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/webhooks/google-ads/{source}": {"post": {
      "summary": "Google Ads lead-form webhook, verified by google_key",
      "parameters": [{"$ref": "#/components/parameters/sourceID"}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GoogleAdsLead"}}}},
      "responses": {"202": {"$ref": "#/components/responses/Accepted"}, "200": {"$ref": "#/components/responses/Accepted"},
        "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"},
        "415": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}, "429": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/costs": {"post": {
      "summary": "Store campaign spend per channel, campaign and day (a restatement replaces)", "security": [{"admin": []}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/CampaignCost"},
        {"type": "object", "required": ["costs"], "properties": {"costs": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/CampaignCost"}}}}]}}}},
      "responses": {"200": {"description": "stored", "content": {"application/json": {"schema": {"type": "object", "required": ["stored"],
        "properties": {"stored": {"type": "integer"}}}}}},
        "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"},
        "422": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/stats/leads": {"get": {
      "summary": "Leads, test leads, duplicates, spend and cost per lead by day, channel and campaign", "security": [{"admin": []}],
      "parameters": [
        {"name": "from", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
        {"name": "group_by", "in": "query", "schema": {"type": "string"}},
        {"name": "channel", "in": "query", "schema": {"type": "string"}},
        {"name": "campaign_id", "in": "query", "schema": {"type": "string"}},
        {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}}],
      "responses": {"200": {"description": "the stats", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LeadStats"}},
        "text/csv": {"schema": {"type": "string"}}}},
        "401": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/admin/sources": {
      "get": {"summary": "List lead sources", "security": [{"admin": []}],
        "responses": {"200": {"description": "sources", "content": {"application/json": {"schema": {"type": "object", "required": ["sources"],
          "properties": {"sources": {"type": "array", "items": {"$ref": "#/components/schemas/LeadSource"}}}}}}},
          "401": {"$ref": "#/components/responses/Problem"}}},
      "post": {"summary": "Create a lead source; its key is shown once", "security": [{"admin": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"],
          "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}, "default_channel": {"type": "string"}}}}}},
        "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IssuedKey"}}}},
          "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "409": {"$ref": "#/components/responses/Problem"},
          "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/admin/sources/{id}": {"delete": {"summary": "Disable a lead source", "security": [{"admin": []}],
      "parameters": [{"$ref": "#/components/parameters/id"}],
      "responses": {"204": {"description": "disabled"}, "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"},
        "404": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/admin/sources/{id}/rotate-key": {"post": {"summary": "Issue a new key (the old one stops at once)", "security": [{"admin": []}],
      "parameters": [{"$ref": "#/components/parameters/id"}],
      "responses": {"200": {"description": "the new key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IssuedKey"}}}},
        "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/admin/sources/{id}/webhook": {
      "get": {"summary": "A source's webhook settings (no secrets)", "security": [{"admin": []}], "parameters": [{"$ref": "#/components/parameters/id"}],
        "responses": {"200": {"description": "settings", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookSettings"}}}},
          "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}}},
      "put": {"summary": "Replace a source's webhook settings", "security": [{"admin": []}], "parameters": [{"$ref": "#/components/parameters/id"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
          "secrets": {"type": "array", "items": {"type": "string"}}, "generate_secret": {"type": "boolean"}, "google_key": {"type": "string"},
          "field_mapping": {"$ref": "#/components/schemas/FieldMapping"}}}}}},
        "responses": {"200": {"description": "settings", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookSettings"}}}},
          "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"},
          "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/health/live": {"get": {"summary": "Liveness", "responses": {"200": {"description": "live", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/health/ready": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object"}}}},
      "503": {"description": "not ready", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
  }
}
"""#
}
