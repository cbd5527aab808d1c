{#- The sums of one churn_monthly group, from int_customer_mrr_months_classified rows. -#}
{% macro _churn_monthly_sums() -%}
    cast(sum(case when is_active_at_start then 1 else 0 end) as bigint) as customers_start,
    cast(sum(case when is_new then 1 else 0 end) as bigint) as new_customers,
    cast(sum(case when is_reactivated then 1 else 0 end) as bigint) as reactivated_customers,
    cast(sum(case when is_churned then 1 else 0 end) as bigint) as churned_customers,
    cast(sum(case when is_active_at_end then 1 else 0 end) as bigint) as customers_end,
    cast(sum(case when is_active_at_start then mrr_start_usd else 0 end) as decimal(38, 12)) as mrr_start,
    cast(sum(new_mrr_usd) as decimal(38, 12)) as new_mrr,
    cast(sum(reactivation_mrr_usd) as decimal(38, 12)) as reactivation_mrr,
    cast(sum(expansion_mrr_usd) as decimal(38, 12)) as expansion_mrr,
    cast(sum(contraction_mrr_usd) as decimal(38, 12)) as contraction_mrr,
    cast(sum(churned_mrr_usd) as decimal(38, 12)) as churned_mrr,
    cast(sum(case when is_active_at_end then mrr_end_usd else 0 end) as decimal(38, 12)) as mrr_end
{%- endmacro %}

{#- The counts of one nps_monthly group. -#}
{% macro _nps_sums() -%}
    cast(count(*) as bigint) as respondents,
    cast(sum(case when nps_category = 'promoter' then 1 else 0 end) as bigint) as promoters,
    cast(sum(case when nps_category = 'passive' then 1 else 0 end) as bigint) as passives,
    cast(sum(case when nps_category = 'detractor' then 1 else 0 end) as bigint) as detractors,
    sum(score) as score_total
{%- endmacro %}
