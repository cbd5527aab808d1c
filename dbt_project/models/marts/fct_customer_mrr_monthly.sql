-- One row per customer per month: MRR at the two closes and the movement between them,
-- published (money rounded half-up to the cent, each column on its own).
-- Per customer, as int_customer_mrr_months_classified (macros/customer_incremental.sql).
{{ per_customer_config('mrr_months', month_column='month') }}

select
    customer_key,
    crm_account_id,
    month_start as month,
    segment,
    region,
    {{ published_money('mrr_start_usd') }} as mrr_start,
    {{ published_money('mrr_end_usd') }} as mrr_end,
    {{ published_money('new_mrr_usd') }} as new_mrr,
    {{ published_money('reactivation_mrr_usd') }} as reactivation_mrr,
    {{ published_money('expansion_mrr_usd') }} as expansion_mrr,
    {{ published_money('contraction_mrr_usd') }} as contraction_mrr,
    {{ published_money('churned_mrr_usd') }} as churned_mrr,
    is_active_at_start,
    is_active_at_end,
    is_new,
    is_reactivated,
    is_churned,
    case
        when is_new then 'new'
        when is_reactivated then 'reactivation'
        when is_churned then 'churn'
        when expansion_mrr_usd > 0 then 'expansion'
        when contraction_mrr_usd > 0 then 'contraction'
        when is_active_at_end then 'retained'
        else 'inactive'
    end as movement
from {{ ref('int_customer_mrr_months_classified') }}
{% if is_incremental() -%}
where {{ is_changed_customer('mrr_months') }}
   or month_start > (select max(month) from {{ this }})
{%- endif %}
