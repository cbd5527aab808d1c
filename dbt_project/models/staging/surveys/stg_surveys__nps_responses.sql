select
    response_id,
    submitted_at,
    {{ normalized_email('email') }} as respondent_email,
    score,
    comment
from {{ source('surveys', 'survey_nps') }}
