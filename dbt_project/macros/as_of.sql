{#- The end of the run's data interval as a UTC TIMESTAMP literal.

    Accepts any ISO-8601 text (`2024-07-01`, `2024-07-01T00:00:00Z`, `...+08:00`);
    an offset is converted to UTC, a bare timestamp is read as UTC. Without the
    `as_of` var, the `CHURN_AS_OF` environment variable (how churnhouse passes it);
    without either, the time dbt started.

    The environment variable is read only when models run, not while dbt parses:
    a var that changes every night makes dbt parse the whole project again each
    night (its partial parsing keys on the vars), and so would an environment
    variable read while parsing. -#}
{% macro as_of() -%}
    {%- set raw = var('as_of', none) -%}
    {%- if execute and (raw is none or (raw | string | trim) == '') -%}
        {%- set raw = env_var('CHURN_AS_OF', '') -%}
    {%- endif -%}
    {%- if raw is none or (raw | string | trim) == '' -%}
        {%- set moment = run_started_at.astimezone(modules.pytz.utc) -%}
    {%- else -%}
        {%- set text = raw | string | trim | replace('Z', '+00:00') | replace('z', '+00:00') -%}
        {%- set moment = modules.datetime.datetime.fromisoformat(text) -%}
        {%- if moment.tzinfo is not none -%}
            {%- set moment = moment.astimezone(modules.pytz.utc) -%}
        {%- endif -%}
    {%- endif -%}
    cast('{{ moment.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}
