"""churnhouse: one trusted churn dataset from CRM, billing, product events and surveys."""

__version__ = "0.1.0"
