"""FX rates: the finance team's monthly rates to USD, one CSV file read whole each run."""

from churnhouse.sources.fx.extract import FX_RATES, extract

RAW_TABLES = (FX_RATES,)
LOOKBACK_DAYS = 0  # the whole file each run

__all__ = ["FX_RATES", "LOOKBACK_DAYS", "RAW_TABLES", "extract"]
