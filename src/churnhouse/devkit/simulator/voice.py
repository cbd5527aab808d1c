"""What a company says besides cancelling: NPS answers and what staff log in the CRM.

Both follow the company's stories: NPS scores drift down in the months before
a churn the customer chose, complaints come before a "we messed up" churn.
"""

from __future__ import annotations

import random

from churnhouse.devkit.simulator.catalog import ACTIVITY_SUBJECTS, COMPLAINTS, NPS_COMMENTS, OFFSETS
from churnhouse.devkit.simulator.clock import DAY, HOUR
from churnhouse.devkit.simulator.draw import written_email
from churnhouse.devkit.simulator.model import Activity, Company, NpsResponse, Stretch
from churnhouse.devkit.simulator.staff import pick_staff

NPS_ANSWER_SHARE = 0.3
DRIFT_DAYS = 180
DRIFT_POINTS = 5.0
DRIFTING_STORIES = {"habit_change", "price", "we_messed_up", "competitor", "product_fit"}
NOISE_COMPLAINT_SHARE = 0.05
CONTACT_LAPSE_SHARE = 0.6  # of chosen churns: nobody called in the months before the decision
CONTACT_LAPSE_DAYS = (120, 240)
CONTACT_KINDS = ("call", "meeting", "qbr")


def nps_responses(
    rng: random.Random, company: Company, respondents: list[str], as_of: int
) -> list[NpsResponse]:
    """A survey every ~90 days of each paying stretch; scores sink before a chosen churn."""
    base = rng.choice((10, 9, 9, 8, 8, 7, 6, 3))  # some unhappy users: scores reach 0
    responses: list[NpsResponse] = []
    for stretch in company.stretches:
        if stretch.story == "trial":
            continue
        moment, end = stretch.start + rng.randrange(20, 90) * DAY, min(stretch.end, as_of)
        while moment < end:
            for email in respondents:
                if rng.random() >= NPS_ANSWER_SHARE:
                    continue
                submitted = moment + rng.randrange(0, 5 * DAY)
                if submitted >= end:
                    continue
                score = _score(rng, base, stretch, submitted)
                responses.append(
                    NpsResponse(
                        response_id=f"nps_{company.index:06d}{len(responses) + 1:03d}",
                        submitted_at=submitted,
                        offset=OFFSETS[company.region],
                        email=written_email(rng, company, email),
                        score=score,
                        comment=_comment(rng, score),
                    )
                )
            moment += rng.randrange(80, 100) * DAY
    return responses


def _score(rng: random.Random, base: int, stretch: Stretch, moment: int) -> int:
    drift = 0.0
    decided = stretch.cancel_requested
    if decided is not None and stretch.story in DRIFTING_STORIES:
        days_before = (decided - moment) / DAY
        drift = DRIFT_POINTS * max(0.0, min(1.0, 1 - days_before / DRIFT_DAYS))
    return max(0, min(10, round(base - drift + rng.gauss(0, 1.2))))


def _comment(rng: random.Random, score: int) -> str:
    if rng.random() >= 0.4:
        return ""
    band = "high" if score >= 9 else "mid" if score >= 7 else "low"
    return rng.choice(NPS_COMMENTS[band])


def crm_activities(rng: random.Random, company: Company, as_of: int) -> list[Activity]:
    """Calls, emails, meetings, QBRs and notes over the account's life, complaints per story."""
    account = company.account
    horizon = min(as_of - 1, _last_service(company, as_of) + 60 * DAY)
    planned = []  # (occurred_at, type, user_id, subject, body)
    moment = account.created_at + rng.randrange(HOUR, 10 * DAY)
    planned.append((moment, "call", account.owner_id, "Onboarding call", None))
    kinds = ("call", "email", "meeting", "note") + (("qbr",) if company.segment != "smb" else ())
    while True:
        moment += rng.randrange(25, 110) * DAY + rng.randrange(DAY)
        if moment > horizon:
            break
        kind = rng.choice(kinds)
        user = account.csm_id if account.csm_id and rng.random() < 0.6 else account.owner_id
        body = None if rng.random() < 0.5 else "Notes in the shared drive."
        planned.append((moment, kind, user, rng.choice(ACTIVITY_SUBJECTS[kind]), body))
    lapses = contact_lapses(company)
    planned = [p for p in planned if not (p[1] in CONTACT_KINDS and _inside(p[0], lapses))]
    planned.extend(_complaints(rng, company, as_of))
    planned = sorted(p for p in planned if p[0] < as_of)
    activities = []
    for number, (occurred, kind, user, subject, body) in enumerate(planned, start=1):
        edited = occurred + rng.randrange(HOUR, 3 * DAY) if rng.random() < 0.05 else occurred
        activities.append(
            Activity(
                activity_id=f"act_{company.index:06d}{number:04d}",
                account_id=account.account_id,
                user_id=user,
                type=kind,
                occurred_at=occurred,
                subject=subject,
                body=body,
                updated_at=min(edited, as_of - 1),
            )
        )
    return activities


def _complaints(rng: random.Random, company: Company, as_of: int) -> list[tuple]:
    complaints = []
    for stretch in company.stretches:
        decided = stretch.cancel_requested
        if stretch.story == "we_messed_up" and decided is not None:
            for _ in range(rng.randrange(1, 4)):
                moment = decided - rng.randrange(3 * DAY, 55 * DAY)
                if moment > stretch.start:
                    subject, body = rng.choice(COMPLAINTS["we_messed_up"])
                    complaints.append(
                        (moment, "complaint", pick_staff(rng, "support"), subject, body)
                    )
        end = min(stretch.end, as_of)
        if end > stretch.start and rng.random() < NOISE_COMPLAINT_SHARE:
            subject, body = rng.choice(COMPLAINTS["any"])
            moment = stretch.start + rng.randrange(end - stretch.start)
            complaints.append((moment, "complaint", pick_staff(rng, "support"), subject, body))
    return complaints


def _last_service(company: Company, as_of: int) -> int:
    ends = [min(stretch.end, as_of) for stretch in company.stretches]
    return max(ends) if ends else company.account.created_at


def contact_lapses(company: Company) -> list[tuple[int, int]]:
    """Spans before a chosen churn in which nobody called, met or reviewed with the customer.

    The playbook's "nobody cares about us" leaver: most customers who decide to leave
    (not all, and never a failed payment) had lost contact months before. Drawn on a
    stream of its own, so the rest of the company is the same with or without it.
    """
    lapses = []
    for stretch in company.stretches:
        decided = stretch.cancel_requested
        if decided is None or stretch.story in ("trial", "involuntary"):
            continue
        rng = random.Random(f"lapse:{company.index}:{stretch.start}")
        if rng.random() < CONTACT_LAPSE_SHARE:
            lapses.append((decided - rng.randrange(*CONTACT_LAPSE_DAYS) * DAY, decided))
    return lapses


def _inside(moment: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= moment < end for start, end in spans)
