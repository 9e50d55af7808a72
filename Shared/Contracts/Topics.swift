import SwiftProtobuf

/// A topic and the event type its records carry.
public struct Topic<Event: SwiftProtobuf.Message>: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    /// The CloudEvents `ce_type` of its records.
    public let eventType: String

    public init(_ name: String, eventType: String) {
        self.name = name
        self.eventType = eventType
    }

    public var description: String { name }
}

/// The suite's topics (`<domain>.<stream>.v<N>`), typed by their event.
public enum Topics {
    /// Input: leads pushed by marketing's own tools. Key: platform lead id.
    public static let campaignLeads = Topic<Funnel_Marketing_V1_CampaignLead>("marketing.campaign-leads.v1", eventType: "funnel.marketing.campaign-lead.v1")
    /// Input: campaign spend per channel, campaign and day. Key: `<channel>/<campaign_id>/<day>`.
    public static let campaignCosts = Topic<Funnel_Marketing_V1_CampaignCost>("marketing.campaign-costs.v1", eventType: "funnel.marketing.campaign-cost.v1")
    /// Validated leads from marketing-intake and online-chat. Key: identity key.
    public static let leadsCaptured = Topic<Funnel_Leads_V1_LeadCaptured>("leads.captured.v1", eventType: "funnel.leads.captured.v1")
    /// Input: users registering in the main business system. Key: user id.
    public static let registrations = Topic<Funnel_Identity_V1_UserRegistered>("identity.registrations.v1", eventType: "funnel.identity.user-registered.v1")
    /// Input: tags from the big-data platform or the learning system. Key: customer or user id.
    public static let customerTags = Topic<Funnel_Identity_V1_CustomerTagged>("identity.tags.v1", eventType: "funnel.identity.customer-tagged.v1")
    /// identity-merge's output: resolved, merged, unmerged, tagged, erased. Key: customer id.
    public static let customers = Topic<Funnel_Identity_V1_CustomerEvent>("identity.customers.v1", eventType: "funnel.identity.customer.v1")
    /// HR's employee changes (hired, changed, left). Key: employee id.
    public static let employees = Topic<Funnel_Hr_V1_EmployeeEvent>("hr.employees.v1", eventType: "funnel.hr.employee.v1")
    /// callcenter-gateway's normalised call outcomes. Key: opportunity id.
    public static let calls = Topic<Funnel_Callcenter_V1_CallCompleted>("callcenter.calls.v1", eventType: "funnel.callcenter.call-completed.v1")
    /// order-bridge's conversions (opened, paid, cancelled, refunded). Key: order id.
    public static let conversions = Topic<Funnel_Sales_V1_Conversion>("sales.conversions.v1", eventType: "funnel.sales.conversion.v1")
    /// sales-dispatch's output: every change of an opportunity. Key: opportunity id.
    public static let opportunities = Topic<Funnel_Sales_V1_OpportunityEvent>("sales.opportunities.v1", eventType: "funnel.sales.opportunity.v1")

    /// The dead-letter topic of a service: `dlq.<service>.v1`.
    public static func deadLetter(service: String) -> String { "dlq.\(service).v1" }
}
