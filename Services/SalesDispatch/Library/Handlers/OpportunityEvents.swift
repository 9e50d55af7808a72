import Contracts
import FastText
import Foundation
import SwiftProtobuf

/// Builds `sales.opportunities.v1` events (keyed by opportunity id) from a unit's changes.
struct OpportunityEvents: Sendable {
    let service: String
    /// The output topic's full name (with the deployment's prefix).
    let topic: String

    func event(_ change: OpportunityChange) throws -> CloudEvent {
        let o = change.opportunity
        var event = Funnel_Sales_V1_OpportunityEvent()
        event.opportunityID = o.id.lowercasedText
        event.change = change.change
        event.occurredAt = Google_Protobuf_Timestamp(date: change.at)
        event.decisionID = change.decisionID?.lowercasedText ?? ""
        event.customerID = o.customerID.lowercasedText
        event.productLine = o.productLine
        event.teamID = o.teamID
        event.ownerID = o.ownerID ?? ""
        event.previousOwnerID = change.previousOwnerID ?? ""
        event.actor = change.actor
        event.reason = change.reason
        event.status = o.status.rawValue
        event.phoneMasked = o.phoneMasked ?? ""
        event.channel = o.channel
        if o.status == .assigned, !o.locked {
            if let due = o.followUpDue { event.followUpDue = Google_Protobuf_Timestamp(date: due) }
            if let due = o.dealDue { event.dealDue = Google_Protobuf_Timestamp(date: due) }
        }
        event.deadline = change.deadline
        event.mergedInto = o.mergedInto?.lowercasedText ?? ""
        event.creditedTo = change.creditedTo
        event.orderID = change.orderID
        event.amountCents = change.amountCents
        event.priority = Int32(clamping: o.priority)
        var cloudEvent = try CloudEvent(topic: Topics.opportunities, key: event.opportunityID, event: event, source: service, time: change.at)
        cloudEvent.topic = topic
        return cloudEvent
    }

    func events(_ changes: some Sequence<OpportunityChange>) throws -> [CloudEvent] { try changes.map(event) }
}
