"""What the simulated company sells and what its customers say: plans, prices, words.

Static data only; the behaviour that uses it is in `company.py` and `lifecycle.py`.
"""

from __future__ import annotations

SEGMENTS = (("smb", 0.6), ("mid_market", 0.3), ("enterprise", 0.1))
REGIONS = (("na", 0.35), ("emea", 0.3), ("apac", 0.25), ("latam", 0.1))
CURRENCIES = {
    "na": (("usd", 1.0),),
    "latam": (("usd", 1.0),),
    "emea": (("eur", 0.8), ("usd", 0.2)),
    "apac": (("cny", 0.45), ("usd", 0.35), ("jpy", 0.2)),  # jpy: a zero-decimal currency
}
# (suffix, seconds): the UTC offset a region's devices and survey tool write.
OFFSETS = {
    "apac": ("+08:00", 8 * 3600),
    "na": ("-05:00", -5 * 3600),
    "emea": ("Z", 0),
    "latam": ("-03:00", -3 * 3600),
}
ALL_OFFSETS = tuple(OFFSETS.values())

TIERS = ("starter", "team", "business", "enterprise")
SEAT_PRICE = {  # per seat and month, minor units
    "usd": (900, 1900, 4900, 9900),
    "eur": (800, 1700, 4500, 9000),
    "cny": (6500, 13900, 34900, 69900),
    "jpy": (1300, 2800, 7200, 14500),  # whole yen: Stripe's amounts are not in cents
}
ADDON_PRODUCT = "prod_insights"
ADDON_PRICE = {"usd": 2900, "eur": 2700, "cny": 19900, "jpy": 4300}
# plan name → (interval, interval_count, months per period, price factor on the monthly price)
# The weekly and daily prices (every 4 weeks, every 30 days) are billed here on the same
# monthly rhythm as the others: MRR reads the price's interval and the line's own period
# (metrics.md), so they exercise the x52/12 and x365/12 scalings and their repeating
# decimals (13/12, 73/72 of the amount) without a weekly billing clock.
PLANS = {
    "monthly": ("month", 1, 1, 1.0),
    "weekly": ("week", 4, 1, 12 / 13),
    "daily": ("day", 30, 1, 360 / 365),
    "quarterly": ("month", 3, 3, 2.85),
    "annual": ("year", 1, 12, 10.0),
}
FIRST_TIER = {
    "smb": ((0, 0.6), (1, 0.4)),
    "mid_market": ((1, 0.6), (2, 0.4)),
    "enterprise": ((2, 0.5), (3, 0.5)),
}
PLAN_SHARE = {
    "smb": (
        ("monthly", 0.68),
        ("weekly", 0.07),
        ("daily", 0.05),
        ("quarterly", 0.05),
        ("annual", 0.15),
    ),
    "mid_market": (("monthly", 0.55), ("weekly", 0.05), ("quarterly", 0.1), ("annual", 0.3)),
    "enterprise": (("monthly", 0.3), ("quarterly", 0.1), ("annual", 0.6)),
}
SEATS = {"smb": (1, 8), "mid_market": (8, 40), "enterprise": (30, 150)}
USERS = {"smb": (1, 4), "mid_market": (3, 9), "enterprise": (6, 16)}
MONTHLY_CHURN_HAZARD = {"smb": 0.045, "mid_market": 0.025, "enterprise": 0.012}

FREE_MAIL = (
    "gmail.com",
    "qq.com",
    "163.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
)
TLDS = ("com", "io", "de", "cn", "co", "com.br", "net", "fr")
INDUSTRIES = (
    "software",
    "retail",
    "finance",
    "healthcare",
    "education",
    "logistics",
    "manufacturing",
    "media",
)
TITLES = (
    "CTO",
    "Head of Operations",
    "Office Manager",
    "Finance Director",
    "Team Lead",
    "运营经理",
    "IT Admin",
)
FIRST_NAMES = (
    "anna",
    "ben",
    "chloe",
    "david",
    "emma",
    "felix",
    "grace",
    "hugo",
    "isla",
    "jonas",
    "li",
    "wei",
    "fang",
    "jun",
    "mei",
    "hao",
    "lucia",
    "mateo",
    "sofia",
    "diego",
    "priya",
    "omar",
    "yuki",
    "lena",
)
LAST_NAMES = (
    "smith",
    "mueller",
    "garcia",
    "wang",
    "zhang",
    "chen",
    "liu",
    "silva",
    "rossi",
    "dubois",
    "kim",
    "tanaka",
    "novak",
    "jensen",
    "okafor",
    "patel",
)
NAME_WORDS = (
    "north",
    "blue",
    "bright",
    "river",
    "summit",
    "pixel",
    "harbor",
    "cedar",
    "nova",
    "atlas",
    "lumen",
    "orbit",
    "maple",
    "quartz",
    "delta",
    "ember",
    "terra",
    "vivid",
)
NAME_NOUNS = (
    "works",
    "labs",
    "systems",
    "logistics",
    "foods",
    "media",
    "health",
    "retail",
    "studio",
    "partners",
    "robotics",
    "finance",
)
LEGAL = ("Inc.", "GmbH", "Ltd.", "S.A.", "有限公司", "LLC", "SAS", "Pty Ltd")

# Why customers leave. A story drives what every source shows before a churn.
STORIES = (
    ("habit_change", 0.24),
    ("price", 0.18),
    ("involuntary", 0.14),
    ("we_messed_up", 0.12),
    ("graduated", 0.1),
    ("competitor", 0.09),
    ("product_fit", 0.08),
    ("external", 0.05),
)
SURVEY_REASONS = {  # story → primary_reason values a respondent picks
    "habit_change": ("unused",),
    "price": ("too_expensive", "too_expensive", "budget_cut"),
    "we_messed_up": ("customer_service", "low_quality"),
    "graduated": ("no_longer_needed",),
    "competitor": ("switched_service",),
    "product_fit": ("missing_features", "too_complex"),
    "external": ("business_closed", "budget_cut"),
    "involuntary": ("too_expensive",),
}
BILLING_FEEDBACK = {  # story → Stripe cancellation_details.feedback
    "habit_change": ("unused",),
    "price": ("too_expensive",),
    "we_messed_up": ("customer_service", "low_quality"),
    "graduated": ("unused", "other"),
    "competitor": ("switched_service",),
    "product_fit": ("missing_features", "too_complex"),
    "external": ("other",),
    "involuntary": ("other",),
}
OFFERS = {  # story → offers the cancel flow may present
    "habit_change": ("pause", "training"),
    "price": ("discount", "downgrade"),
    "we_messed_up": ("discount", "training"),
    "graduated": ("pause", "discount"),
    "competitor": ("discount",),
    "product_fit": ("training", "downgrade"),
    "external": ("discount", "pause"),
    "involuntary": ("discount",),
}
# primary_reason → (English, Chinese) answers; the keyword rules of docs/metrics.md see these.
REASON_TEXTS = {
    "too_expensive": (
        'Too expensive for a team our size, "cheaper" plans lack SSO',
        "价格太贵,今年预算有限",
    ),
    "budget_cut": ("Budget cut this year, finance froze all tools", "今年预算削减,价格太贵"),
    "missing_features": ("Missing feature: no Gantt view, no offline mode", "功能不够,缺少甘特图"),
    "too_complex": ("Too complex for the people who had to use it", "太复杂了,团队学不会"),
    "low_quality": ("Too many bugs, the editor crash lost our work", "故障太多,经常崩溃"),
    "customer_service": ("Support never answered our tickets", "客服回复太慢,问题一直没解决"),
    "switched_service": ("We switched to a competitor with a CRM built in", "换成了竞争对手的产品"),
    "unused": ("Honestly we were not using it, no time to set it up", "没时间用,一直没有用起来"),
    "no_longer_needed": ("Project finished, we no longer need it", "项目结束了,不再需要"),
    "business_closed": ("The company closed down in March", "公司倒闭了"),
    "other": ("Moving everything to one vendor, nothing wrong with you", "整合供应商"),
}
VAGUE_TEXTS = ("", "n/a", "-", "谢谢")  # no keyword: states `other` when non-empty
SECOND_LINE = ("明年再看\n谢谢", "We might come back next year.\nThanks for the help")
BILLING_COMMENTS = ("Too pricey for us right now", "用不上了", "Moving to another tool, thanks")
COMPLAINTS = {  # story → (subject, body) pairs a support agent logs
    "we_messed_up": (
        ("Outage during launch", "The app had an outage for 3 hours during our product launch."),
        ("Export crash", "Export to PDF crashes every time; a bug since the last release."),
        ("客服", "客服回复太慢,工单一周没有处理"),
        ("Escalation", "Customer says support is ignoring them."),
    ),
    "any": (
        ("Invoice question", "Asked why the invoice went up; explained the seats."),
        ("Login problems", "Password reset emails arrive late."),
        ("价格", "客户觉得价格太贵"),
    ),
}
NPS_COMMENTS = {
    "high": ("Love it, the reports save us hours", "很好用", "Great product, great team"),
    "mid": ("Fine, a bit slow sometimes", "还可以,希望更快一点", ""),
    "low": (
        'Support is slow, "urgent" tickets wait for days',
        "Support is slow, 客服回复太慢",
        "Too expensive for what we use",
        "经常崩溃",
    ),
}
ACTIVITY_SUBJECTS = {
    "call": ("Onboarding call", "Check-in call", "Renewal call"),
    "email": ("Sent the product update", "Follow-up on training", "Shared the roadmap"),
    "meeting": ("Workshop with the team", "Demo of the new reports"),
    "qbr": ("Quarterly business review",),
    "note": ("Champion changed roles", "Asked about SSO", "Happy with the rollout"),
}
EVENTS = (  # (event, weight, property JSON variants)
    ("login", 0.36, ('{"method": "password"}', '{"method": "sso"}', '{"method": "google"}')),
    (
        "feature_used",
        0.34,
        (
            '{"feature": "board"}',
            '{"feature": "export"}',
            '{"feature": "automation"}',
            '{"feature": "search"}',
        ),
    ),
    (
        "report_created",
        0.16,
        ('{"report_type": "funnel"}', '{"report_type": "burndown"}', '{"report_type": "workload"}'),
    ),
    ("invite_sent", 0.06, ('{"role": "member"}', '{"role": "admin"}')),
    (
        "project_created",
        0.08,
        ('{"template": "blank"}', '{"template": "sprint"}', '{"template": "campaign"}'),
    ),
)
ACTIVATION_EVENT = "project_created"
