import Foundation

extension DispatchUnit {
    /// A later lead for an open opportunity: recorded, priority raised, and pulled back out of the pool into
    /// dispatch (the previous owner's cooldown still applies).
    mutating func reinquire(_ id: UUID, demand: Demand) {
        guard var opportunity = opportunities[id] else { return }
        opportunity.priority += 1
        opportunity.reinquiries += 1
        if opportunity.phoneMasked == nil { opportunity.phoneMasked = demand.phoneMasked }
        if opportunity.phoneKey == nil { opportunity.phoneKey = demand.phoneKey }
        touch(opportunity, retime: false)
        let decision = decide("reinquired", opportunity: id, actor: "system",
                              detail: ["subject": demand.subject, "priority": "\(opportunity.priority)", "status": opportunity.status.rawValue,
                                       "channel": demand.channel])
        emit("reinquired", opportunity, decision: decision, actor: "system", reason: demand.channel)
        if opportunity.status == .pool {
            dispatch(id, actor: "system")
        }
    }

    /// A follow-up by the holder (a connected call or the follow-up API) pushes the follow-up deadline back.
    mutating func followUp(_ id: UUID, by employeeID: String, at time: Date, source: String, outcome: String) throws {
        guard var opportunity = opportunities[id] else { throw DispatchRefusal("not_found", "no such opportunity") }
        guard opportunity.status == .assigned, opportunity.ownerID == employeeID else {
            throw DispatchRefusal("not_holder", "only the holder's follow-ups push its deadline back")
        }
        let teamPolicy = policy.team(opportunity.teamID)
        opportunity.lastFollowUpAt = max(time, opportunity.lastFollowUpAt ?? time)
        let due = opportunity.lastFollowUpAt! + teamPolicy.protection.followUpDays * 86_400
        if due > (opportunity.followUpDue ?? .distantPast) {
            opportunity.followUpDue = due
            opportunity.followUpWarned = false
        }
        touch(opportunity)
        emit("followed_up", opportunity, decision: nil, actor: employeeID, reason: "\(source):\(outcome)")
    }

    mutating func setLocked(_ id: UUID, _ locked: Bool, actor: String, reason: String) throws {
        guard var opportunity = opportunities[id] else { throw DispatchRefusal("not_found", "no such opportunity") }
        guard opportunity.status == .assigned else { throw DispatchRefusal("not_held", "only a held opportunity can be locked or unlocked") }
        guard opportunity.locked != locked else { throw DispatchRefusal(locked ? "already_locked" : "not_locked", "nothing to change") }
        opportunity.locked = locked
        if !locked {
            // Unlocking restarts the protection clock: the rep is not punished for the time it was locked.
            let teamPolicy = policy.team(opportunity.teamID)
            opportunity.followUpDue = now + teamPolicy.protection.followUpDays * 86_400
            if (opportunity.dealDue ?? .distantPast) < now + teamPolicy.protection.followUpDays * 86_400 {
                opportunity.dealDue = now + teamPolicy.protection.followUpDays * 86_400
            }
            opportunity.followUpWarned = false
            opportunity.dealWarned = false
        }
        touch(opportunity)
        let decision = decide(locked ? "locked" : "unlocked", opportunity: id, actor: actor, detail: ["reason": reason])
        emit(locked ? "locked" : "unlocked", opportunity, decision: decision, actor: actor, reason: reason)
    }

    /// A paid order wins the opportunity, credited to the holder at payment time (or to the previous holder
    /// when paid within the team's credit window after a transfer). `history` is the ownership intervals.
    mutating func win(_ id: UUID, orderID: String, amountCents: Int64, paidAt: Date, history: [OwnershipInterval]) {
        guard var opportunity = opportunities[id], opportunity.status.isOpen else { return }
        let teamPolicy = policy.team(opportunity.teamID)
        let credited = OwnershipInterval.creditedOwner(history, at: paidAt, creditWindow: teamPolicy.protection.creditWindowDays * 86_400)
        let decision = decide("won", opportunity: id, actor: "system",
                              detail: ["order_id": orderID, "credited_to": credited.owner ?? "", "credit_rule": credited.rule,
                                       "paid_at": ISO8601DateFormatter().string(from: paidAt)])
        takeAway(id, how: "won", decision: decision)
        opportunity = opportunities[id]!
        opportunity.status = .won
        opportunity.paid = true
        touch(opportunity)
        emit("won", opportunity, decision: decision, actor: "system", reason: credited.rule, previousOwner: opportunity.previousOwnerID) {
            $0.creditedTo = credited.owner ?? ""
            $0.orderID = orderID
            $0.amountCents = amountCents
        }
    }

    /// An order opened or closed without payment: open orders exempt it from recycling (by policy).
    mutating func orderChanged(_ id: UUID, opened: Bool) {
        guard var opportunity = opportunities[id] else { return }
        opportunity.openOrders = max(0, opportunity.openOrders + (opened ? 1 : -1))
        touch(opportunity)
    }

    /// The customer `absorbed` was merged into `survivor`: its opportunities move; where both have an open one
    /// for the same product line, the absorbed one folds into the survivor's (its holder lets go).
    mutating func mergeCustomer(absorbedOpportunities: [UUID], survivor: UUID, survivorOpen: [String: UUID], decisionDetail: [String: String]) {
        for id in absorbedOpportunities {
            guard var opportunity = opportunities[id] else { continue }
            if opportunity.status.isOpen, let target = survivorOpen[opportunity.productLine], target != id {
                let decision = decide("merged", opportunity: id, actor: "system", detail: decisionDetail.merging(["into": target.uuidString.lowercased()]) { $1 })
                takeAway(id, how: "merged", decision: decision)
                opportunity = opportunities[id]!
                opportunity.status = .merged
                opportunity.mergedInto = target
                opportunity.customerID = survivor
                touch(opportunity)
                emit("merged", opportunity, decision: decision, actor: "system", reason: "customer merged") { $0.opportunity.mergedInto = target }
                if var kept = opportunities[target] {
                    kept.priority = max(kept.priority, opportunity.priority) + 1
                    touch(kept, retime: false)
                }
            } else {
                opportunity.customerID = survivor
                touch(opportunity, retime: false)
            }
        }
    }

    /// The customer was erased: its opportunities keep their ids and history but lose every trace of PII.
    mutating func erase(_ id: UUID) {
        guard var opportunity = opportunities[id] else { return }
        opportunity.phoneMasked = nil
        opportunity.phoneKey = nil
        opportunity.region = ""
        touch(opportunity, retime: false)
        emit("erased", opportunity, decision: nil, actor: "system", reason: "customer erased")
    }
}

/// One interval of an opportunity's ownership.
public struct OwnershipInterval: Sendable, Codable, Equatable {
    public var employeeID: String
    public var from: Date
    public var to: Date?
    public var openedHow: String
    public var closedHow: String?

    enum CodingKeys: String, CodingKey {
        case from, to
        case employeeID = "employee_id"
        case openedHow = "opened_how"
        case closedHow = "closed_how"
    }

    /// Who gets the credit for a payment at `paidAt`: the holder then; but when that holding began by a transfer
    /// less than `creditWindow` before, the one who held it before the transfer.
    static func creditedOwner(_ history: [OwnershipInterval], at paidAt: Date, creditWindow: TimeInterval) -> (owner: String?, rule: String) {
        let sorted = history.sorted { $0.from < $1.from }
        guard let index = sorted.lastIndex(where: { $0.from <= paidAt && ($0.to ?? .distantFuture) >= paidAt }) else {
            return (nil, "no_holder_at_payment")
        }
        let holding = sorted[index]
        if creditWindow > 0, holding.openedHow == "transferred", paidAt.timeIntervalSince(holding.from) < creditWindow, index > 0 {
            return (sorted[index - 1].employeeID, "within_credit_window_after_transfer")
        }
        return (holding.employeeID, "holder_at_payment")
    }
}

extension DispatchUnit {
    /// Takes every listed opportunity from its holder: to the pool, then (when `redistribute`) straight to
    /// another rep of its team, the former holder excluded. Used for leavers and bulk reassignment.
    mutating func releaseAll(_ ids: [UUID], how: String, actor: String, reason: String, redistribute: Bool, to target: String? = nil) throws {
        for id in ids {
            guard let opportunity = opportunities[id], opportunity.status == .assigned, let owner = opportunity.ownerID else { continue }
            if let target {
                try transfer(id, to: target, actor: actor, reason: reason, how: "transferred")
                continue
            }
            let decision = decide(how, opportunity: id, actor: actor, detail: ["from": owner, "reason": reason, "redistribute": redistribute ? "yes" : "no"])
            takeAway(id, how: how, decision: decision)
            var released = opportunities[id]!
            released.locked = false
            touch(released)
            emit("released", released, decision: decision, actor: actor, reason: reason, previousOwner: owner)
            if redistribute { dispatch(id, actor: actor, excluding: [owner], stayInPool: true) }
        }
    }

    /// Pauses or resumes a rep. A pause only takes them out of rotation: what they hold, their place in the
    /// rotation and their counts stay as they were.
    mutating func setPaused(_ repID: String, _ paused: Bool) throws {
        guard var rep = reps[repID] else { throw DispatchRefusal("not_found", "no rep \(repID)") }
        guard rep.paused != paused else { throw DispatchRefusal(paused ? "already_paused" : "not_paused", "nothing to change") }
        rep.paused = paused
        reps[repID] = rep
        changedReps.insert(repID)
    }
}
