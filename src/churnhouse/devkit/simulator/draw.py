"""Small random draws shared by the generators."""

from __future__ import annotations

import random

MESSY_CASE_SHARE = 0.25
MESSY_SPACE_SHARE = 0.12


def pick(rng: random.Random, weighted):
    """A value from ((value, weight), ...) with one random draw."""
    roll, total = rng.random() * sum(weight for _, weight in weighted), 0.0
    for value, weight in weighted:
        total += weight
        if roll < total:
            return value
    return weighted[-1][0]


def messy_email(rng: random.Random, email: str) -> str:
    """An email as people type it: any case, sometimes with spaces around."""
    if email and rng.random() < MESSY_CASE_SHARE:
        email = rng.choice((email.upper(), email.title(), email[:1].upper() + email[1:]))
    if email and rng.random() < MESSY_SPACE_SHARE:
        email = rng.choice((f" {email} ", f"{email} ", f"  {email}"))
    return email


def written_email(rng: random.Random, company, email: str) -> str:
    """`email` as one of the company's systems holds it; counts it when it came out messy."""
    written = messy_email(rng, email)
    company.messy_emails += written != email
    return written
