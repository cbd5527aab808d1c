"""raw.crm_accounts — the versions of CRM accounts seen tonight."""

from churnhouse.sources.crm import CRM_TABLES

TABLE = CRM_TABLES["accounts"].qualified_name
BOUNDARY = "raw"


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="account_id"),
        e.ExpectColumnValuesToNotBeNull(column="updated_at"),
        e.ExpectCompoundColumnsToBeUnique(column_list=["account_id", "updated_at"]),
        e.ExpectColumnValuesToBeInSet(column="region", value_set=["apac", "emea", "na", "latam"]),
        e.ExpectColumnValuesToBeInSet(
            column="segment", value_set=["smb", "mid_market", "enterprise"]
        ),
    ]
