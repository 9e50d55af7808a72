/// online-chat's OpenAPI 3.1 document, served at `/openapi.json` and checked by schemathesis in `make test`
/// (no 5xx for any generated input; every response matches this document). The WebSocket protocol of
/// `/v1/chat/ws` is described in the README; here only its upgrade request is.
enum ChatOpenAPI {
    static let document = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Funnel online-chat",
    "version": "1.0.0",
    "description": "The embeddable chat widget's visitor API (sessions, messages, long polling), the operator API and chat site administration. Errors are RFC 9457 problem+json with a stable code."
  },
  "components": {
    "securitySchemes": {
      "session": {"type": "http", "scheme": "bearer", "description": "the visitor's session token from POST /v1/chat/sessions (cs_…)"},
      "operator": {"type": "http", "scheme": "bearer", "description": "an employee JWT (HS256) or FUNNEL_ADMIN_TOKEN"},
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
      "Message": {"type": "object", "required": ["seq", "author", "body", "at"], "properties": {
        "seq": {"type": "integer", "minimum": 1}, "author": {"enum": ["visitor", "bot", "operator", "system"]},
        "author_id": {"type": "string"}, "body": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}},
      "State": {"type": "object", "required": ["status"], "properties": {
        "status": {"enum": ["bot", "waiting", "operator", "closed"]},
        "question": {"type": "object", "required": ["id", "kind", "required", "options"], "properties": {
          "id": {"type": "string"}, "kind": {"enum": ["name", "phone", "course", "text"]}, "required": {"type": "boolean"},
          "options": {"type": "array", "items": {"type": "string"}}}}}},
      "Update": {"type": "object", "required": ["conversation_id", "messages", "state"], "properties": {
        "conversation_id": {"type": "string", "format": "uuid"}, "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
        "state": {"$ref": "#/components/schemas/State"}}},
      "Session": {"type": "object", "required": ["token", "conversation_id", "visitor_id", "resumed", "locale", "messages", "state"], "properties": {
        "token": {"type": "string"}, "conversation_id": {"type": "string", "format": "uuid"}, "visitor_id": {"type": "string"},
        "resumed": {"type": "boolean"}, "locale": {"enum": ["zh", "en"]}, "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
        "state": {"$ref": "#/components/schemas/State"}}},
      "Text": {"type": "object", "required": ["zh", "en"], "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}},
      "Question": {"type": "object", "required": ["id", "kind", "prompt", "required"], "properties": {
        "id": {"type": "string"}, "kind": {"enum": ["name", "phone", "course", "text"]}, "prompt": {"$ref": "#/components/schemas/Text"},
        "retry": {"$ref": "#/components/schemas/Text"}, "required": {"type": "boolean"}, "options": {"type": "array", "items": {"type": "string"}},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10}}},
      "BotFlow": {"type": "object", "required": ["greeting", "questions", "completion"], "properties": {
        "greeting": {"$ref": "#/components/schemas/Text"}, "completion": {"$ref": "#/components/schemas/Text"}, "skipped": {"$ref": "#/components/schemas/Text"},
        "questions": {"type": "array", "maxItems": 20, "items": {"$ref": "#/components/schemas/Question"}}}},
      "Site": {"type": "object", "required": ["id", "name", "allowed_origins", "locale", "bot_flow", "flow_version", "disabled"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "allowed_origins": {"type": "array", "items": {"type": "string"}},
        "locale": {"enum": ["zh", "en"]}, "bot_flow": {"$ref": "#/components/schemas/BotFlow"}, "flow_version": {"type": "integer"},
        "disabled": {"type": "boolean"}}},
      "SiteInput": {"type": "object", "required": ["name", "allowed_origins"], "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}, "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "allowed_origins": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"type": "string"}},
        "locale": {"enum": ["zh", "en"]}, "bot_flow": {"$ref": "#/components/schemas/BotFlow"}, "disabled": {"type": "boolean"}}},
      "ConversationSummary": {"type": "object", "required": ["id", "site_id", "visitor_id", "status", "utm", "answers", "message_count", "created_at", "updated_at"],
        "properties": {"id": {"type": "string", "format": "uuid"}, "site_id": {"type": "string"}, "visitor_id": {"type": "string"},
          "status": {"enum": ["bot", "waiting", "operator", "closed"]}, "operator_id": {"type": "string"}, "lead_id": {"type": "string", "format": "uuid"},
          "page_url": {"type": "string"}, "utm": {"type": "object", "additionalProperties": {"type": "string"}},
          "answers": {"type": "object", "additionalProperties": {"type": "string"}}, "message_count": {"type": "integer"},
          "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}}
    },
    "responses": {
      "Problem": {"description": "problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    },
    "parameters": {
      "conversation": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
      "site": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}
    }
  },
  "paths": {
    "/v1/chat/sessions": {"post": {"summary": "Start a conversation, or resume the open one of a token",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["site"], "properties": {
        "site": {"type": "string"}, "token": {"type": "string"}, "page_url": {"type": "string"}, "referrer_url": {"type": "string"},
        "utm": {"type": "object", "properties": {"source": {"type": "string"}, "medium": {"type": "string"}, "campaign": {"type": "string"},
          "term": {"type": "string"}, "content": {"type": "string"}}},
        "locale": {"type": "string"}}}}}},
      "responses": {"201": {"description": "a new conversation", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}},
        "200": {"description": "the open conversation, resumed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}},
        "400": {"$ref": "#/components/responses/Problem"}, "403": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"},
        "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}, "429": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/chat/messages": {
      "post": {"summary": "Send a message ({text}) or skip the bot's optional question ({skip: true})", "security": [{"session": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
          "text": {"type": "string", "maxLength": 1000}, "skip": {"type": "boolean"}}}}}},
        "responses": {"201": {"description": "stored, with the bot's replies", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Update"}}}},
          "200": {"description": "not stored (a required question cannot be skipped); the bot says why", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Update"}}}},
          "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "403": {"$ref": "#/components/responses/Problem"},
          "409": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"},
          "429": {"$ref": "#/components/responses/Problem"}}},
      "get": {"summary": "Long-poll: messages after a seq, waiting up to `wait` seconds for news", "security": [{"session": []}],
        "parameters": [{"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                       {"name": "wait", "in": "query", "description": "seconds; shortened to FUNNEL_CHAT_LONG_POLL_SECONDS", "schema": {"type": "integer", "minimum": 0, "maximum": 120}}],
        "responses": {"200": {"description": "new messages (maybe none) and the state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Update"}}}},
          "401": {"$ref": "#/components/responses/Problem"}, "403": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/operator/conversations": {"get": {"summary": "Conversations for operators, newest activity first", "security": [{"operator": []}],
      "parameters": [{"name": "status", "in": "query", "schema": {"enum": ["open", "all", "bot", "waiting", "operator", "closed"]}},
                     {"name": "site", "in": "query", "schema": {"type": "string"}},
                     {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
      "responses": {"200": {"description": "conversations", "content": {"application/json": {"schema": {"type": "object", "required": ["conversations"],
        "properties": {"conversations": {"type": "array", "items": {"$ref": "#/components/schemas/ConversationSummary"}}}}}}},
        "401": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/operator/conversations/{id}": {"get": {"summary": "A conversation with its messages", "security": [{"operator": []}],
      "parameters": [{"$ref": "#/components/parameters/conversation"}],
      "responses": {"200": {"description": "the conversation", "content": {"application/json": {"schema": {"type": "object", "required": ["conversation", "messages"],
        "properties": {"conversation": {"$ref": "#/components/schemas/ConversationSummary"}, "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}}}}}},
        "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/operator/conversations/{id}/messages": {"post": {"summary": "Reply as an operator (takes the conversation over from the bot)", "security": [{"operator": []}],
      "parameters": [{"$ref": "#/components/parameters/conversation"}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}}}},
      "responses": {"201": {"description": "sent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Update"}}}},
        "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"},
        "409": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/operator/conversations/{id}/close": {"post": {"summary": "Close a conversation", "security": [{"operator": []}],
      "parameters": [{"$ref": "#/components/parameters/conversation"}],
      "responses": {"200": {"description": "closed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Update"}}}},
        "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}, "409": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/admin/sites": {
      "get": {"summary": "List chat sites", "security": [{"admin": []}],
        "responses": {"200": {"description": "sites", "content": {"application/json": {"schema": {"type": "object", "required": ["sites"],
          "properties": {"sites": {"type": "array", "items": {"$ref": "#/components/schemas/Site"}}}}}}},
          "401": {"$ref": "#/components/responses/Problem"}}},
      "post": {"summary": "Create a chat site (the standard bot flow unless one is given)", "security": [{"admin": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SiteInput"}}}},
        "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Site"}}}},
          "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "409": {"$ref": "#/components/responses/Problem"},
          "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/v1/admin/sites/{id}": {
      "get": {"summary": "A chat site", "security": [{"admin": []}], "parameters": [{"$ref": "#/components/parameters/site"}],
        "responses": {"200": {"description": "the site", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Site"}}}},
          "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}}},
      "put": {"summary": "Replace a site's settings (the flow version goes up when the flow changes)", "security": [{"admin": []}],
        "parameters": [{"$ref": "#/components/parameters/site"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SiteInput"}}}},
        "responses": {"200": {"description": "the site", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Site"}}}},
          "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"},
          "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/demo": {"get": {"summary": "A page embedding the widget for a site", "parameters": [{"name": "site", "in": "query", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}, "422": {"$ref": "#/components/responses/Problem"}}}},
    "/widget.js": {"get": {"summary": "The embeddable widget", "responses": {"200": {"description": "JavaScript",
      "content": {"application/javascript": {"schema": {"type": "string"}}}}}}},
    "/health/live": {"get": {"summary": "Liveness", "responses": {"200": {"description": "live", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/health/ready": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object"}}}},
      "503": {"description": "not ready", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
  }
}
"""#
}
