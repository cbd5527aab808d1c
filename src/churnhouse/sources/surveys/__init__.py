"""Cancellation and NPS survey CSV exports dropped in a landing folder.

Every file is read each run (they are small) in file-name order; a later row
replaces an earlier one with the same `response_id`, so a re-delivered file
changes nothing.
"""

from churnhouse.sources.surveys.extract import CANCELLATIONS, NPS, extract

RAW_TABLES = (CANCELLATIONS, NPS)
LOOKBACK_DAYS = 0  # every file is read each run

__all__ = ["CANCELLATIONS", "LOOKBACK_DAYS", "NPS", "RAW_TABLES", "extract"]
