/* churnhouse dashboard: draws the embedded published data (no network). */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("churn-data").textContent);
  var ALL = "all";
  var COLORS = {
    blue: "#2f6fde", red: "#d64545", orange: "#e8833a", green: "#3f9c35",
    teal: "#1f9e89", purple: "#7b5ea7", grey: "#8a94a6"
  };
  var charts = {};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }
  function money(value) {
    if (value === null || value === undefined) { return "-"; }
    return "$" + Number(value).toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: 0 });
  }
  function pct(value, digits) {
    if (value === null || value === undefined) { return "-"; }
    return (value * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }
  function month(iso) { return iso ? iso.slice(0, 7) : "-"; }
  function notPublished(target, table) {
    target.appendChild(el("div", {
      "class": "not-published", "data-table": table,
      text: "Not published yet: the table analytics." + table + " is not in the published data."
    }));
  }
  function table(headers, rows, numeric) {
    var head = el("tr", {}, headers.map(function (h, i) {
      return el("th", { "class": numeric[i] ? "num" : "", text: h });
    }));
    var body = rows.map(function (cells) {
      return el("tr", {}, cells.map(function (cell, i) {
        var td = el("td", { "class": numeric[i] ? "num" : "" });
        if (cell instanceof Node) { td.appendChild(cell); } else { td.textContent = cell; }
        return td;
      }));
    });
    return el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  /* ---- churn_monthly with filters ------------------------------------------------------- */
  var SUMMED = ["customers_start", "new_customers", "reactivated_customers", "churned_customers",
    "customers_end", "mrr_start", "new_mrr", "reactivation_mrr", "expansion_mrr",
    "contraction_mrr", "churned_mrr", "mrr_end"];

  function months() {
    var seen = {};
    DATA.monthly.forEach(function (row) { seen[row.month] = true; });
    return Object.keys(seen).sort();
  }
  function distinct(column) {
    var seen = {};
    DATA.monthly.forEach(function (row) { if (row[column] !== ALL) { seen[row[column]] = true; } });
    return Object.keys(seen).sort();
  }
  /* One row per month for the chosen cut: the published total row for all/all, else the
     sum of the matching segment x region rows with the rates recomputed from the sums. */
  function monthlyFor(segment, region) {
    var byMonth = {};
    months().forEach(function (m) {
      var out = { month: m };
      SUMMED.forEach(function (c) { out[c] = 0; });
      byMonth[m] = out;
    });
    if (segment === ALL && region === ALL) {
      DATA.monthly.forEach(function (row) {
        if (row.segment === ALL && row.region === ALL) { byMonth[row.month] = row; }
      });
      return months().map(function (m) { return byMonth[m]; });
    }
    DATA.monthly.forEach(function (row) {
      if (row.segment === ALL || row.region === ALL) { return; }
      if (segment !== ALL && row.segment !== segment) { return; }
      if (region !== ALL && row.region !== region) { return; }
      var out = byMonth[row.month];
      SUMMED.forEach(function (c) { out[c] += Number(row[c] || 0); });
    });
    return months().map(function (m) {
      var r = byMonth[m];
      r.logo_churn_rate = r.customers_start ? r.churned_customers / r.customers_start : null;
      r.gross_revenue_churn_rate = r.mrr_start ? (r.churned_mrr + r.contraction_mrr) / r.mrr_start : null;
      r.net_revenue_retention = r.mrr_start
        ? (r.mrr_start + r.expansion_mrr - r.contraction_mrr - r.churned_mrr) / r.mrr_start : null;
      return r;
    });
  }
  function asPercent(value) { return value === null || value === undefined ? null : value * 100; }

  function drawKpis(rows) {
    var box = document.getElementById("kpis");
    box.textContent = "";
    var last = rows[rows.length - 1] || {};
    [
      ["Month", month(last.month)],
      ["MRR at month end", money(last.mrr_end)],
      ["Customers at month end", last.customers_end === undefined ? "-" : String(last.customers_end)],
      ["Logo churn", pct(last.logo_churn_rate)],
      ["Gross revenue churn", pct(last.gross_revenue_churn_rate)],
      ["Net revenue retention", pct(last.net_revenue_retention)]
    ].forEach(function (kpi) {
      box.appendChild(el("div", { "class": "kpi" }, [
        el("div", { "class": "label", text: kpi[0] }), el("div", { "class": "value", text: kpi[1] })
      ]));
    });
  }

  function drawTrend(rows) {
    var labels = rows.map(function (r) { return month(r.month); });
    var datasets = [
      { label: "Logo churn rate %", data: rows.map(function (r) { return asPercent(r.logo_churn_rate); }),
        borderColor: COLORS.red, backgroundColor: COLORS.red, yAxisID: "churn" },
      { label: "Gross revenue churn %", data: rows.map(function (r) { return asPercent(r.gross_revenue_churn_rate); }),
        borderColor: COLORS.orange, backgroundColor: COLORS.orange, yAxisID: "churn" },
      { label: "Net revenue retention %", data: rows.map(function (r) { return asPercent(r.net_revenue_retention); }),
        borderColor: COLORS.blue, backgroundColor: COLORS.blue, yAxisID: "nrr" }
    ];
    if (charts.trend) {
      charts.trend.data.labels = labels;
      charts.trend.data.datasets.forEach(function (d, i) { d.data = datasets[i].data; });
      charts.trend.update();
      return;
    }
    charts.trend = new Chart(document.getElementById("trend-chart"), {
      type: "line",
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: "index", intersect: false },
        scales: {
          churn: { position: "left", title: { display: true, text: "churn %" }, beginAtZero: true },
          nrr: { position: "right", title: { display: true, text: "NRR %" }, grid: { drawOnChartArea: false } }
        }
      }
    });
  }

  var BRIDGE = [
    ["New", "new_mrr", 1, COLORS.green],
    ["Reactivation", "reactivation_mrr", 1, COLORS.teal],
    ["Expansion", "expansion_mrr", 1, COLORS.blue],
    ["Contraction", "contraction_mrr", -1, COLORS.orange],
    ["Churned", "churned_mrr", -1, COLORS.red]
  ];
  function drawBridge(rows) {
    var labels = rows.map(function (r) { return month(r.month); });
    var datasets = BRIDGE.map(function (b) {
      return {
        label: b[0], backgroundColor: b[3], stack: "mrr",
        data: rows.map(function (r) { return b[2] * Number(r[b[1]] || 0); })
      };
    });
    datasets.push({
      type: "line", label: "Net change", borderColor: COLORS.purple, backgroundColor: COLORS.purple,
      data: rows.map(function (r) { return Number(r.mrr_end || 0) - Number(r.mrr_start || 0); })
    });
    if (charts.bridge) {
      charts.bridge.data.labels = labels;
      charts.bridge.data.datasets.forEach(function (d, i) { d.data = datasets[i].data; });
      charts.bridge.update();
      return;
    }
    charts.bridge = new Chart(document.getElementById("bridge-chart"), {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "USD" } } }
      }
    });
  }

  function fillSelect(id, values) {
    var select = document.getElementById(id);
    [ALL].concat(values).forEach(function (v) { select.appendChild(el("option", { value: v, text: v })); });
    select.addEventListener("change", redrawMonthly);
  }
  function redrawMonthly() {
    var rows = monthlyFor(document.getElementById("segment-filter").value,
      document.getElementById("region-filter").value);
    drawKpis(rows);
    drawTrend(rows);
    drawBridge(rows);
  }

  /* ---- reasons and drivers --------------------------------------------------------------- */
  function drawReasons() {
    var reasons = DATA.reasons;
    var total = reasons.reduce(function (s, r) { return s + r.churns; }, 0);
    var running = 0;
    var cumulative = reasons.map(function (r) { running += r.churns; return total ? 100 * running / total : 0; });
    charts.reasons = new Chart(document.getElementById("reasons-chart"), {
      type: "bar",
      data: {
        labels: reasons.map(function (r) { return r.reason_category; }),
        datasets: [
          { label: "Churns", data: reasons.map(function (r) { return r.churns; }),
            backgroundColor: COLORS.red, yAxisID: "count", order: 2 },
          { type: "line", label: "Cumulative share %", data: cumulative,
            borderColor: COLORS.blue, backgroundColor: COLORS.blue, yAxisID: "share", order: 1 }
        ]
      },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {
          count: { position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "churns" } },
          share: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false },
            title: { display: true, text: "cumulative %" } }
        }
      }
    });
  }
  function drawDrivers() {
    var target = document.getElementById("drivers-body");
    if (!DATA.drivers) { notPublished(target, "churn_drivers"); return; }
    target.appendChild(table(
      ["rank", "reason", "churns", "share", "churned MRR", "influenceable", "priority"],
      DATA.drivers.map(function (d) {
        return [String(d.priority_rank), d.reason_category, String(d.churns), pct(d.churn_share),
          money(d.churned_mrr), pct(d.influenceable_share), Number(d.priority_score).toFixed(3)];
      }),
      [true, false, true, true, true, true, true]
    ));
  }

  /* ---- at risk --------------------------------------------------------------------------- */
  function drawRisk() {
    var target = document.getElementById("risk-body");
    var backtest = document.getElementById("backtest-body");
    if (DATA.backtest && DATA.backtest.length) {
      var b = DATA.backtest[DATA.backtest.length - 1];
      backtest.appendChild(el("p", { "class": "muted", text:
        "Track record (" + month(b.month) + "): " + b.flagged_customers + " flagged high, " +
        b.churned_flagged + " of them churned within 90 days; precision " + pct(b.precision_rate) +
        ", recall " + pct(b.recall_rate) + ", lift " +
        (b.lift === null ? "-" : Number(b.lift).toFixed(2) + "x") + "." }));
    }
    if (!DATA.at_risk) { notPublished(target, "customer_health"); return; }
    if (!DATA.at_risk.length) {
      target.appendChild(el("p", { text: "No customer is at high or medium risk." }));
      return;
    }
    var wrap = el("div", { "class": "scroll", id: "risk-table" });
    wrap.appendChild(table(
      ["customer", "risk", "reasons", "segment", "region", "MRR"],
      DATA.at_risk.map(function (r) {
        return [r.customer_key, el("span", { "class": "risk-" + r.risk_level, text: r.risk_level }),
          r.risk_reasons || "", r.segment || "-", r.region || "-", money(r.current_mrr)];
      }),
      [false, false, false, false, false, true]
    ));
    target.appendChild(wrap);
  }

  /* ---- cohorts --------------------------------------------------------------------------- */
  function heatColor(value) {
    if (value === null || value === undefined) { return "transparent"; }
    var v = Math.max(0, Math.min(1, value));
    return "rgba(47, 111, 222, " + (0.08 + 0.8 * v).toFixed(3) + ")";
  }
  function drawCohorts() {
    var target = document.getElementById("cohort-body");
    if (!DATA.cohorts) { notPublished(target, "cohort_retention"); return; }
    var cohorts = {}, maxAge = 0;
    DATA.cohorts.forEach(function (c) {
      var key = c.cohort_month;
      cohorts[key] = cohorts[key] || { size: c.cohort_customers, cells: {} };
      cohorts[key].cells[c.months_since_start] = c.logo_retention;
      maxAge = Math.max(maxAge, c.months_since_start);
    });
    var headers = ["cohort", "customers"];
    for (var a = 0; a <= maxAge; a++) { headers.push("m" + a); }
    var tableNode = table(headers, Object.keys(cohorts).sort().map(function (key) {
      var row = [month(key), String(cohorts[key].size)];
      for (var age = 0; age <= maxAge; age++) {
        var v = cohorts[key].cells[age];
        var cell = el("span", { text: v === undefined || v === null ? "" : pct(v, 0) });
        cell.dataset.value = v === undefined || v === null ? "" : String(v);
        row.push(cell);
      }
      return row;
    }), headers.map(function (h, i) { return i > 0; }));
    tableNode.className = "heat";
    tableNode.id = "cohort-table";
    tableNode.querySelectorAll("td span[data-value]").forEach(function (span) {
      span.parentNode.style.background = span.dataset.value === "" ? "" : heatColor(Number(span.dataset.value));
    });
    var wrap = el("div", { "class": "scroll" }, [tableNode]);
    target.appendChild(wrap);
  }

  /* ---- loyalty x spend ------------------------------------------------------------------- */
  var NPS_ORDER = ["promoter", "passive", "detractor", "no answer", "no_answer"];
  function drawLoyalty() {
    var target = document.getElementById("loyalty-body");
    if (!DATA.loyalty) { notPublished(target, "loyalty_spend_segments"); return; }
    if (!DATA.loyalty.length) { target.appendChild(el("p", { text: "No rows yet." })); return; }
    var tiers = {}, classes = {}, cells = {};
    DATA.loyalty.forEach(function (c) {
      var t = tiers[c.spend_tier] || (tiers[c.spend_tier] = { customers: 0, mrr: 0 });
      t.customers += c.customers || 0; t.mrr += c.mrr || 0;
      classes[c.nps_class] = true;
      cells[c.nps_class + "|" + c.spend_tier] = c;
    });
    var tierNames = Object.keys(tiers).sort(function (a, b) {
      var pa = tiers[a].customers ? tiers[a].mrr / tiers[a].customers : 0;
      var pb = tiers[b].customers ? tiers[b].mrr / tiers[b].customers : 0;
      return pa - pb;
    });
    var classNames = Object.keys(classes).sort(function (a, b) {
      var ia = NPS_ORDER.indexOf(a), ib = NPS_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : 1);
    });
    target.appendChild(el("p", { "class": "muted", text: "Month " + month(DATA.loyalty[0].month) +
      ": customers, MRR, churn rate over the next 90 days and the suggested action per cell." }));
    var grid = table(["NPS class \\ spend tier"].concat(tierNames), classNames.map(function (cls) {
      return [cls].concat(tierNames.map(function (tier) {
        var c = cells[cls + "|" + tier];
        if (!c) { return ""; }
        var box = el("div", { "data-cell": cls + "|" + tier }, [
          el("div", { text: c.customers + " customers, " + money(c.mrr) }),
          el("div", { "class": "muted", text: "churn 90d: " + pct(c.churn_rate_next_90d) }),
          el("div", { text: c.suggested_action || "" })
        ]);
        return box;
      }));
    }), [false].concat(tierNames.map(function () { return false; })));
    grid.id = "loyalty-grid";
    target.appendChild(grid);
  }

  /* ---- page ------------------------------------------------------------------------------ */
  function drawPublication() {
    var p = DATA.publication;
    document.getElementById("publication").textContent = p
      ? "Published run " + p.run_id + ", data as of " + p.as_of.replace("T", " ") + " UTC"
      : "No publication record.";
  }

  drawPublication();
  fillSelect("segment-filter", distinct("segment"));
  fillSelect("region-filter", distinct("region"));
  redrawMonthly();
  drawReasons();
  drawDrivers();
  drawRisk();
  drawCohorts();
  drawLoyalty();
  document.body.dataset.ready = "true";
})();
