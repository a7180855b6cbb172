#!/usr/bin/env python3
"""Oracle data for the PromQL-parity tests of the rule engine.

usage: python3 scripts/promql-parity.py [--promtool PATH] [--from-json FILE]
                                        [--output FILE] [--check] [--keep]

    --promtool PATH  promtool binary (default: promtool on PATH; Debian's
                     `prometheus` package, 2.42, ships /usr/bin/promtool)
    --from-json FILE take the expected values from FILE, the JSON this script
                     wrote before it wrote rule files (the last one is in git:
                     `git show 73289c1:tests/data/promql_parity.json`), instead
                     of running promtool. Every case below must be in it with
                     the same series, query and time, and nothing else may
                     be: the values stay promtool's.
    --output FILE    where to write the rule file (default:
                     tests/lang/promql_parity.rules beside this script's
                     parent directory)
    --check          regenerate and compare with FILE instead of writing it
                     (exit 1 when they differ)
    --keep           keep the temporary directory with the generated test files

Every case below is a set of series (promtool's series notation), one PromQL
query at one evaluation time, and the same query in the rule language of
mcpops (docs/language.md). Nothing in here runs the mcpops engine: the expected
results come from Prometheus itself, through `promtool test rules`.

How the values are obtained (stdlib only, no PyYAML):

1. Pass 1: each case becomes a one-group unit-test file whose
   `promql_expr_test` expects a single sample with a label no series has.
   promtool fails the test and prints, on stderr,
       expr: "<go-quoted expr>", time: <go duration>,
           exp: <expected samples>
           got: <actual samples> | nil
   where each sample is `{name="value", ...} <float>` (labels sorted, values
   Go-quoted, samples joined by ", ") and the float is written by Go's
   strconv.FormatFloat(v, 'E', -1, 64): the shortest string that reads back
   as the same float64, or NaN / +Inf / -Inf. The parser below is strict: any
   output it does not recognise, an evaluation error, or a header that does
   not name this case's expression and time aborts the run.
2. Pass 2 (confirmation): each case is written again with the parsed samples
   as `exp_samples` (full labels including __name__, floats in their shortest
   round-trip form, .nan/.inf/-.inf). promtool compares with
   reflect.DeepEqual, i.e. exact float equality, so a pass proves every value
   is bit-exact. NaN never equals itself, so a case holding NaN must instead
   fail with an `exp:` line textually identical to its `got:` line.

Every case is also checked before it is run:
  * no sample (nor stale marker) sits on the left edge of any range or of the
    5m instant-selector lookback, after offsets: Prometheus 2.42 closes those
    windows on the left, Prometheus 3 and mcpops open them;
  * predict_linear only over ranges holding fewer than 12 samples (mcpops'
    `predict` switches to Holt's method from 12 samples);
  * plain [a-z_] metric and label names, none of the PromQL features the rule
    language lacks, and no two results whose labels become equal once
    __name__ is dropped.

Output: tests/lang/promql_parity.rules, a rule file of `test` blocks that
`mcpops test` runs (tests/it/lang.rs runs it with the rest of tests/lang/).
Each case is one block:

    test "CASE NAME" {
      # promql: THE PROMQL QUERY
      interval 1m
      series NAME{LABELS} = "PROMTOOL SERIES NOTATION"
      expect value(DSL) at T == VALUE { LABELS }     one line per result
      expect value(count without (LABEL, ...) (DSL)) at T == N
    }

with __name__ dropped from the labels, values in their shortest round-trip
form (NaN, +Inf and -Inf as written; `mcpops test` takes NaN to equal NaN),
and `expect value(DSL) at T == none` when Prometheus returns nothing. An
`expect value(..) { LABELS }` passes when exactly one result carries those
labels (it may carry more), so the `count without (...)` line, over every
label name the results have, holds the result to exactly the expected
series: one more series, or a label Prometheus does not give, makes it fail.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUTPUT = os.path.join(ROOT, "tests", "lang", "promql_parity.rules")

NO_MATCH_LABELS = '{__parity_no_match__="1"}'
NO_MATCH_LINE = NO_MATCH_LABELS + " 0E+00"
LOOKBACK_MS = 5 * 60 * 1000


class ParityError(Exception):
    pass


# --------------------------------------------------------------------- cases

CASES = []


def case(name, interval, series, promql, eval_time, dsl=None):
    """series: list of (selector, values) in promtool notation."""
    CASES.append({
        "name": name,
        "interval": interval,
        "series": [{"selector": s, "values": v} for s, v in series],
        "promql": promql,
        "dsl": dsl if dsl is not None else to_dsl(promql),
        "eval_time": eval_time,
    })


def rep(value, n):
    """n copies of a value: promtool has no `NaNxN` form."""
    return " ".join([value] * n)


def to_dsl(promql):
    """The mechanical translations of the brief; everything else is shared."""
    s = promql
    s = re.sub(r"\b(avg|min|max|sum|count|stddev)_over_time\(", r"\1(", s)
    s = re.sub(r"\blast_over_time\(", "last(", s)
    s = re.sub(r"\bquantile_over_time\(", "quantile(", s)
    s = re.sub(r"\babsent_over_time\(", "absent(", s)
    s = re.sub(r"\bpredict_linear\(", "predict(", s)
    return s


# Shared data sets -----------------------------------------------------------

COUNTER = 'http_requests{job="api", instance="1"}'

# Five gauges in two jobs, for aggregation across series (values at 10m30s:
# a/1 8, a/2 7.5, a/3 -2, b/1 10, b/2 4.25).
TEMP = [
    ('temp{job="a", instance="1"}', "3+0.5x20"),
    ('temp{job="a", instance="2"}', "7.5x20"),
    ('temp{job="a", instance="3"}', "-2x20"),
    ('temp{job="b", instance="1"}', "0+1x20"),
    ('temp{job="b", instance="2"}', "4.25x20"),
]

# One-to-one operands: lhs and rhs share label sets except rhs{job="c"}.
LHS_RHS = [
    ('lhs{job="a", instance="1"}', "7x20"),
    ('lhs{job="a", instance="2"}', "-7.5x20"),
    ('lhs{job="b", instance="1"}', "0x20"),
    ('lhs{job="b", instance="2"}', "2x20"),
    ('rhs{job="a", instance="1"}', "2x20"),
    ('rhs{job="a", instance="2"}', "4x20"),
    ('rhs{job="b", instance="1"}', "0x20"),
    ('rhs{job="b", instance="2"}', "-3x20"),
    ('rhs{job="c", instance="1"}', "5x20"),
]

# Matching on one label: used has instance, cap has zone.
USED_CAP = [
    ('used{job="a", instance="1"}', "30x20"),
    ('used{job="b", instance="2"}', "36x20"),
    ('cap{job="a", zone="z1"}', "120x20"),
    ('cap{job="b", zone="z2"}', "48x20"),
    ('cap{job="c", zone="z1"}', "10x20"),
]

# Counters in two jobs for per-group sums: a/2 resets at 11m, b/1 starts at
# 9m at a low value (extrapolation to zero), b/2 is slow.
CALLS = [
    ('calls{job="a", instance="1"}', "0+5x30"),
    ('calls{job="a", instance="2"}', "100+20x10 0+20x19"),
    ('calls{job="b", instance="1"}', "_x9 1+3x21"),
    ('calls{job="b", instance="2"}', "0+1x30"),
]

# A noisy gauge with negatives, 30s apart.
LAT = [('lat{job="a"}', "0.3 0.1 -0.2 0.9 0.5 0.4 1.7 -0.05 0.6 0.25 0.8 1.1 0.7 -0.4 0.35 0.9")]
LAT_EVAL = "5m15s"  # window (2m15s, 5m15s]: 0.4 1.7 -0.05 0.6 0.25 0.8

# ---- rate / increase / delta ------------------------------------------------

case("rate of a steady counter, window inside the data",
     "1m", [(COUNTER, "0+10x30")], "rate(http_requests[5m])", "17m30s")
case("rate with a counter reset in the window",
     "1m", [(COUNTER, "0+10x10 0+10x10")], "rate(http_requests[5m])", "13m30s")
case("increase with two counter resets in the window",
     "1m", [(COUNTER, "50+10x5 3+10x2 1+4x10")], "increase(http_requests[7m])", "9m30s")
case("increase where the counter drops only slightly (any decrease is a reset)",
     "1m", [(COUNTER, "100 110 120 119 125 130 140")], "increase(http_requests[5m])", "5m30s")
case("increase, series starting 2.5 intervals inside the window: half-interval extrapolation "
     "(instance high), extrapolation to zero (low), no zero rule for a negative first sample (negative)",
     "1m", [('http_requests{job="api", instance="high"}', "_x15 100+10x10"),
            ('http_requests{job="api", instance="low"}', "_x15 2+10x10"),
            ('http_requests{job="api", instance="negative"}', "_x15 -5+10x10")],
     "increase(http_requests[5m])", "17m30s")
case("increase, counter starting at 0 within 1.1 intervals of the window start: "
     "extrapolation to zero stops at the first sample",
     "1m", [(COUNTER, "_x13 0+10x10")], "increase(http_requests[5m])", "17m30s")
case("rate, series ending inside the window: half-interval extrapolation at the end",
     "1m", [(COUNTER, "0+10x14")], "rate(http_requests[5m])", "17m30s")
case("rate with a single sample in the window gives nothing",
     "1m", [(COUNTER, "_x16 40 _x5")], "rate(http_requests[5m])", "17m30s")
case("increase with exactly two samples in the window",
     "1m", [(COUNTER, "_x15 40 48 _x5")], "increase(http_requests[5m])", "17m30s")
case("rate with irregular gaps in the window (average spacing of the samples)",
     "1m", [(COUNTER, "0 10 _ _ 40 _ 60 70 _ _ _ 110 120")], "rate(http_requests[10m])", "12m30s")
case("rate ignores a stale marker inside the window",
     "1m", [(COUNTER, "0+10x10 stale 110+10x10")], "rate(http_requests[5m])", "12m30s")
case("delta of a gauge with negative values",
     "1m", [('gauge{job="a"}', "5 -3 2 -8 4 6 -1 0 3 -2 7")], "delta(gauge[5m])", "9m30s")
case("delta, gauge starting inside the window at a low value (no zero rule for gauges)",
     "1m", [('gauge{job="a"}', "_x15 2+10x10")], "delta(gauge[5m])", "17m30s")

# ---- deriv / predict_linear / changes ----------------------------------------

case("deriv of a linear gauge is its slope per second",
     "1m", [('gauge{job="a"}', "100-3x20")], "deriv(gauge[5m])", "12m30s")
case("deriv of a noisy gauge with negative values and a gap (least squares)",
     "1m", [('gauge{job="a"}', "1 3 -2 6 _ -9 8 12 11 -15 14 18")], "deriv(gauge[10m])", "11m30s")
case("predict_linear of a linear gauge, 10 samples, one hour ahead",
     "1m", [('disk_free{job="a"}', "1000-7x20")], "predict_linear(disk_free[10m], 3600)", "15m30s")
case("predict_linear of a noisy gauge, 7 samples, from an off-grid time",
     "1m", [('disk_free{job="a"}', "50 48 49 45 46 41 43 40 38 39 35")],
     "predict_linear(disk_free[7m], 600)", "10m20s")
case("predict_linear with two samples, horizon written as a duration in the DSL",
     "1m", [('disk_free{job="a"}', "_x8 30 20 _x5")], "predict_linear(disk_free[5m], 1800)", "9m30s",
     dsl="predict(disk_free[5m], 30m)")
case("changes counts value changes in the window",
     "1m", [('state{job="a"}', "1 1 2 2 2 3 1 1 1 4 4 4")], "changes(state[8m])", "11m30s")
case("changes: NaN to NaN is no change, NaN to a number and back are",
     "1m", [('state{job="a"}', "1 NaN NaN 1 1 NaN 2")], "changes(state[7m])", "6m30s")

# ---- absent_over_time ----------------------------------------------------------

case("absent_over_time of a series with samples in the window gives nothing",
     "1m", [('up{job="a", instance="1"}', "1x20")], 'absent_over_time(up{job="a"}[5m])', "12m30s")
case("absent_over_time of a metric that never existed: labels from its = matchers only",
     "1m", [('up{job="a", instance="1"}', "1x20")],
     'absent_over_time(nonexistent{job="a", instance=~"1|2", env!="prod"}[5m])', "12m30s")
case("absent_over_time when the window holds only a stale marker",
     "1m", [('up{job="a", instance="1"}', "1x5 stale _x10")],
     'absent_over_time(up{job="a", instance="1"}[3m])', "8m30s")
case("absent_over_time with no = matchers gives an empty label set",
     "1m", [('up{job="a", instance="1"}', "1x20")],
     'absent_over_time(nonexistent[5m])', "12m30s")

# ---- quantile_over_time and the *_over_time family -----------------------------

for q in ("0", "0.5", "0.95", "1"):
    case("quantile_over_time at q=%s over 6 samples with negatives" % q, "30s", LAT,
         "quantile_over_time(%s, lat[3m])" % q, LAT_EVAL)
# Prometheus sorts every NaN before all numbers, and interpolates
# a*(1-w) + b*w even at w = 0, so an infinite neighbour (or an infinite
# maximum at q=1, Inf*0) gives NaN.
for q in ("0", "0.25", "0.5", "1"):
    case("quantile_over_time at q=%s with NaN samples (NaN sorts first)" % q,
         "1m", [('lat{job="a"}', "3 NaN 1 NaN 2 5")], "quantile_over_time(%s, lat[6m])" % q, "5m30s")
case("quantile_over_time at a whole rank next to +Inf is NaN (Inf * 0)",
     "1m", [('lat{job="a"}', "1 2 Inf")], "quantile_over_time(0.5, lat[3m])", "2m30s")
case("quantile_over_time at q=1 with a +Inf maximum is NaN",
     "1m", [('lat{job="a"}', "1 Inf 2")], "quantile_over_time(1, lat[3m])", "2m30s")
case("quantile_over_time at q=0 with a -Inf minimum is -Inf",
     "1m", [('lat{job="a"}', "1 -Inf 2")], "quantile_over_time(0, lat[3m])", "2m30s")
case("avg_over_time", "30s", LAT, "avg_over_time(lat[3m])", LAT_EVAL)
case("min_over_time with negative values", "30s", LAT, "min_over_time(lat[3m])", LAT_EVAL)
case("max_over_time", "30s", LAT, "max_over_time(lat[3m])", LAT_EVAL)
case("sum_over_time", "30s", LAT, "sum_over_time(lat[3m])", LAT_EVAL)
case("stddev_over_time (population standard deviation)", "30s", LAT, "stddev_over_time(lat[3m])", LAT_EVAL)
case("count_over_time with gaps and a stale marker",
     "1m", [('lat{job="a"}', "1 _ 2 3 _ _ 4 stale 5 _")], "count_over_time(lat[8m])", "9m30s")
case("last_over_time finds the newest sample though it is older than the 5m lookback",
     "1m", [('lat{job="a"}', "1 2 3 4 _x10")], "last_over_time(lat[10m])", "10m30s")
case("avg_over_time with a NaN sample is NaN",
     "1m", [('lat{job="a"}', "1 2 NaN 4 5")], "avg_over_time(lat[5m])", "4m30s")
case("max_over_time ignores a NaN sample",
     "1m", [('lat{job="a"}', "1 NaN 7 4 NaN")], "max_over_time(lat[5m])", "4m30s")
case("sum_over_time with +Inf is +Inf",
     "1m", [('lat{job="a"}', "1 Inf 2 3")], "sum_over_time(lat[5m])", "3m30s")

# ---- aggregation across series ---------------------------------------------------

case("sum by (job)", "1m", TEMP, "sum by (job) (temp)", "10m30s")
case("sum(...) by (job), grouping written after the call", "1m", TEMP, "sum(temp) by (job)", "10m30s")
case("avg without (instance)", "1m", TEMP, "avg without (instance) (temp)", "10m30s")
case("min by (job)", "1m", TEMP, "min by (job) (temp)", "10m30s")
case("max of all series, no grouping: empty label set", "1m", TEMP, "max(temp)", "10m30s")
case("count by (job)", "1m", TEMP, "count by (job) (temp)", "10m30s")
case("stddev by (job) (population)", "1m", TEMP, "stddev by (job) (temp)", "10m30s")
case("quantile 0.9 by (job), interpolated between series", "1m", TEMP,
     "quantile by (job) (0.9, temp)", "10m30s")
case("topk 1 keeps the series' labels", "1m", TEMP, "topk(1, temp)", "10m30s")
case("topk 2", "1m", TEMP, "topk(2, temp)", "10m30s")
case("bottomk 2 with a negative value", "1m", TEMP, "bottomk(2, temp)", "10m30s")
case("topk 1 by (job)", "1m", TEMP, "topk by (job) (1, temp)", "10m30s")
case("max across series ignores a NaN series",
     "1m", [('temp{job="a", instance="1"}', rep("NaN", 11)), ('temp{job="a", instance="2"}', "3x10")],
     "max by (job) (temp)", "5m30s")
case("quantile by (job) across series with a NaN series (NaN sorts first)",
     "1m", [('temp{job="a", instance="1"}', rep("NaN", 6)), ('temp{job="a", instance="2"}', "3x5"),
            ('temp{job="a", instance="3"}', "1x5")],
     "quantile by (job) (0.5, temp)", "3m30s")

# ---- per-group sums and the pooled form of the rule language ---------------------

case("sum by (job) of per-series rates (a reset in a/2, a late low start in b/1)",
     "1m", CALLS, "sum by (job) (rate(calls[5m]))", "12m30s")
case("pooled rate by (job) is the sum of per-series rates",
     "1m", CALLS, "sum by (job) (rate(calls[5m]))", "12m30s", dsl="rate(calls[5m]) by (job)")
case("pooled increase by (job) is the sum of per-series increases",
     "1m", CALLS, "sum by (job) (increase(calls[5m]))", "12m30s", dsl="increase(calls[5m]) by (job)")
case("pooled count by (job) is the number of samples in the group",
     "1m", CALLS, "sum by (job) (count_over_time(calls[5m]))", "12m30s", dsl="count(calls[5m]) by (job)")
case("pooled avg by (job) is the mean of all samples of the group",
     "1m", CALLS,
     "sum by (job) (sum_over_time(calls[5m])) / sum by (job) (count_over_time(calls[5m]))",
     "12m30s", dsl="avg(calls[5m]) by (job)")

# ---- arithmetic -------------------------------------------------------------------

for op, what in (("+", "sum"), ("/", "division, 0/0 is NaN"),
                 ("%", "modulo with negative operands, 0%0 is NaN"),
                 ("^", "power, 0^0 is 1, negative exponent")):
    case("vector %s vector, one-to-one on identical labels: %s" % (op, what),
         "1m", LHS_RHS, "lhs %s rhs" % op, "5m30s")
case("vector / 0 gives +Inf, -Inf and NaN", "1m", LHS_RHS, "lhs / 0", "5m30s")
case("scalar - vector", "1m", LHS_RHS, "10 - lhs", "5m30s")
case("precedence: ^ before * before +", "1m", LHS_RHS, "lhs + rhs * 2 ^ 2", "5m30s")
case("vector minus itself with an Inf sample gives NaN",
     "1m", [('gauge{job="a"}', rep("Inf", 6)), ('gauge{job="b"}', "4x5")], "gauge - gauge", "3m30s")
case("ratio of two rates, one-to-one on job",
     "1m", [('errors{job="a"}', "0+1x20"), ('errors{job="b"}', "0+3x20"),
            ('reqs{job="a"}', "0+10x20"), ('reqs{job="b"}', "0+12x20")],
     "rate(errors[5m]) / rate(reqs[5m])", "12m30s")

# ---- comparisons ------------------------------------------------------------------

case("vector > scalar filters, keeping the values", "1m", LHS_RHS, "lhs > 1", "5m30s")
case("vector > bool scalar gives 0/1", "1m", LHS_RHS, "lhs > bool 1", "5m30s")
case("scalar < vector filters and keeps the vector's value", "1m", LHS_RHS, "1 < lhs", "5m30s")
case("vector > vector filters on identical labels, keeping the left value",
     "1m", LHS_RHS, "lhs > rhs", "5m30s")
case("vector > bool vector", "1m", LHS_RHS, "lhs > bool rhs", "5m30s")
case("comparison with NaN: NaN > bool 1 is 0",
     "1m", [('gauge{job="a"}', rep("NaN", 6)), ('gauge{job="b"}', "4x5")], "gauge > bool 1", "3m30s")

# ---- on(...) ------------------------------------------------------------------------

case("vector / on(job) vector keeps only the on labels",
     "1m", USED_CAP, "used / on(job) cap", "5m30s")
case("vector > on(job) vector filter: the result's labels are the on labels",
     "1m", USED_CAP, "used > on(job) cap * 0.5", "5m30s")
case("and on(job) keeps the left side's labels",
     "1m", USED_CAP, 'used and on(job) cap{zone="z1"}', "5m30s")

# ---- and / or / unless ------------------------------------------------------------

case("and: a comparison binds tighter than and", "1m", LHS_RHS, "lhs and rhs > 0", "5m30s")
case("or adds right-hand series with new label sets", "1m", LHS_RHS, "lhs or rhs", "5m30s")
case("unless", "1m", LHS_RHS, "lhs unless rhs > 0", "5m30s")
case("and binds tighter than or", "1m", LHS_RHS, "lhs > 5 or lhs < 0 and rhs > 3", "5m30s")

# ---- offset -------------------------------------------------------------------------

case("instant selector with offset",
     "1m", [('gauge{job="a"}', "0+1x30")], "gauge offset 10m", "17m30s")
case("rate over a range with offset",
     "1m", [(COUNTER, "0+10x10 0+4x20")], "rate(http_requests[5m] offset 10m)", "17m30s")
case("max_over_time over a range with offset, before a spike leaves the window",
     "1m", [('gauge{job="a"}', "1 2 3 4 5 6 50 8 9 10 11 12")], "max_over_time(gauge[5m] offset 3m)", "11m30s")

# ---- instant selectors and the 5m lookback ---------------------------------------------

case("instant selector finds the newest sample within 5m",
     "1m", [('gauge{job="a"}', "1 2 3 _x10")], "gauge", "6m30s")
case("instant selector finds nothing after 5m of silence",
     "1m", [('gauge{job="a"}', "1 2 3 _x10")], "gauge", "7m30s")
case("instant selector finds nothing after a stale marker",
     "1m", [('gauge{job="a"}', "1 2 3 stale _x5")], "gauge", "4m30s")
case("instant selector: anchored regex and != matchers, a negative value",
     "1m", [('gauge{job="api", instance="1"}', "-1.5x10"), ('gauge{job="apiserver", instance="2"}', "2x10"),
            ('gauge{job="api", instance="3"}', "3x10")],
     'gauge{job=~"api", instance!="3"}', "5m30s")

# ---- histogram_quantile over classic buckets --------------------------------------

# Raw cumulative counts: 10 at or below 0.1, 30 at or below 0.5, 40 in all.
HIST = [
    ('lat_bucket{job="a", le="0.1"}', "10x10"),
    ('lat_bucket{job="a", le="0.5"}', "30x10"),
    ('lat_bucket{job="a", le="+Inf"}', "40x10"),
]
# Counters: per minute instance 1 adds 1, 3, 4 and instance 2 adds 3, 3, 4
# (at or below 0.1, at or below 0.5, in all).
REQ = [
    ('req_bucket{job="api", instance="1", le="0.1"}', "0+1x30"),
    ('req_bucket{job="api", instance="1", le="0.5"}', "0+3x30"),
    ('req_bucket{job="api", instance="1", le="+Inf"}', "0+4x30"),
    ('req_bucket{job="api", instance="2", le="0.1"}', "0+3x30"),
    ('req_bucket{job="api", instance="2", le="0.5"}', "0+3x30"),
    ('req_bucket{job="api", instance="2", le="+Inf"}', "0+4x30"),
]

case("histogram_quantile interpolates within the bucket of the rank", "1m", HIST,
     "histogram_quantile(0.5, lat_bucket)", "5m30s")
case("histogram_quantile in the lowest bucket interpolates from 0", "1m", HIST,
     "histogram_quantile(0.1, lat_bucket)", "5m30s")
case("histogram_quantile in the +Inf bucket gives the highest finite bound", "1m", HIST,
     "histogram_quantile(0.95, lat_bucket)", "5m30s")
case("histogram_quantile at 0", "1m", HIST, "histogram_quantile(0, lat_bucket)", "5m30s")
case("histogram_quantile at 1 (the +Inf bucket)", "1m", HIST, "histogram_quantile(1, lat_bucket)", "5m30s")
# A literal quantile outside 0..1 is an error at `mcpops check`; computed, it
# gives what Prometheus gives.
case("histogram_quantile below 0 is -Inf (computed in the DSL)", "1m", HIST,
     "histogram_quantile(-0.5, lat_bucket)", "5m30s", dsl="histogram_quantile(0 - 0.5, lat_bucket)")
case("histogram_quantile above 1 is +Inf (computed in the DSL)", "1m", HIST,
     "histogram_quantile(1.5, lat_bucket)", "5m30s", dsl="histogram_quantile(1 + 0.5, lat_bucket)")
case("histogram_quantile at NaN is NaN (computed in the DSL)", "1m", HIST,
     "histogram_quantile(NaN, lat_bucket)", "5m30s", dsl="histogram_quantile(0 / 0, lat_bucket)")
case("histogram_quantile without a +Inf bucket is NaN",
     "1m", [('lat_bucket{job="a", le="0.1"}', "10x10"), ('lat_bucket{job="a", le="0.5"}', "30x10")],
     "histogram_quantile(0.5, lat_bucket)", "5m30s")
case("histogram_quantile of a single (+Inf) bucket is NaN",
     "1m", [('lat_bucket{job="a", le="+Inf"}', "40x10")], "histogram_quantile(0.5, lat_bucket)", "5m30s")
case("histogram_quantile with decreasing cumulative counts (raised to the count below)",
     "1m", [('lat_bucket{job="a", le="0.1"}', "10x10"), ('lat_bucket{job="a", le="0.5"}', "4x10"),
            ('lat_bucket{job="a", le="1"}', "20x10"), ('lat_bucket{job="a", le="+Inf"}', "20x10")],
     "histogram_quantile(0.75, lat_bucket)", "5m30s")
case("histogram_quantile with no observations is NaN",
     "1m", [('lat_bucket{job="a", le="0.1"}', "0x10"), ('lat_bucket{job="a", le="+Inf"}', "0x10")],
     "histogram_quantile(0.5, lat_bucket)", "5m30s")
case("histogram_quantile of a rate over a window without observations is NaN",
     "1m", [('req_bucket{job="api", le="0.1"}', "5x20"), ('req_bucket{job="api", le="+Inf"}', "9x20")],
     "histogram_quantile(0.9, rate(req_bucket[5m]))", "15m30s")
case("histogram_quantile with a lowest bound at or below 0 gives that bound",
     "1m", [('lat_bucket{job="a", le="-1"}', "5x10"), ('lat_bucket{job="a", le="0"}', "8x10"),
            ('lat_bucket{job="a", le="+Inf"}', "10x10")],
     "histogram_quantile(0.3, lat_bucket)", "5m30s")
case("histogram_quantile over rate per series keeps each instance",
     "1m", REQ, "histogram_quantile(0.5, rate(req_bucket[5m]))", "15m30s")
case("histogram_quantile over increase",
     "1m", REQ, "histogram_quantile(0.9, increase(req_bucket[10m]))", "15m30s")
case("histogram_quantile over sum by (le, job) of rates",
     "1m", REQ, "histogram_quantile(0.6, sum by (le, job) (rate(req_bucket[5m])))", "15m30s")
case("histogram_quantile over sum by (le) of rates: one histogram, no labels",
     "1m", REQ, "histogram_quantile(0.99, sum by (le) (rate(req_bucket[5m])))", "15m30s")
case("histogram_quantile of several histograms at once, each its own buckets",
     "1m", [('lat_bucket{job="a", le="0.1"}', "10x10"), ('lat_bucket{job="a", le="0.5"}', "30x10"),
            ('lat_bucket{job="a", le="+Inf"}', "40x10"),
            ('lat_bucket{job="b", le="0.25"}', "2x10"), ('lat_bucket{job="b", le="1"}', "7x10"),
            ('lat_bucket{job="b", le="2.5"}', "9x10"), ('lat_bucket{job="b", le="+Inf"}', "10x10"),
            ('lat_bucket{job="c", le="1"}', "3x10")],
     "histogram_quantile(0.7, lat_bucket)", "5m30s")
case("histogram_quantile over rate with a counter reset in one bucket series",
     "1m", [('req_bucket{job="api", le="0.1"}', "0+2x10 0+2x10"),
            ('req_bucket{job="api", le="0.5"}', "0+5x10 0+5x10"),
            ('req_bucket{job="api", le="+Inf"}', "0+6x10 0+6x10")],
     "histogram_quantile(0.5, rate(req_bucket[5m]))", "13m30s")
case("histogram_quantile over rate with a reset in the +Inf bucket only (non-monotonic rates)",
     "1m", [('req_bucket{job="api", le="0.1"}', "0+2x20"),
            ('req_bucket{job="api", le="0.5"}', "0+5x20"),
            ('req_bucket{job="api", le="+Inf"}', "0+6x10 0+6x10")],
     "histogram_quantile(0.5, rate(req_bucket[5m]))", "13m30s")
case("histogram_quantile with le 1 and 1.0: one bound, counts added up",
     "1m", [('lat_bucket{job="a", le="1"}', "8x10"), ('lat_bucket{job="a", le="1.0"}', "12x10"),
            ('lat_bucket{job="a", le="+Inf"}', "40x10")],
     "histogram_quantile(0.25, lat_bucket)", "5m30s")
case("histogram_quantile ignores a series whose le is not a number",
     "1m", HIST + [('lat_bucket{job="a", le="fast"}', "1000x10")],
     "histogram_quantile(0.5, lat_bucket)", "5m30s")
case("histogram_quantile with le written 1e-1 and +Inf as Inf",
     "1m", [('lat_bucket{job="a", le="1e-1"}', "10x10"), ('lat_bucket{job="a", le="0.5"}', "30x10"),
            ('lat_bucket{job="a", le="Inf"}', "40x10")],
     "histogram_quantile(0.5, lat_bucket)", "5m30s")


# ---- functions at an instant -------------------------------------------------

# Ties in both directions for round (Prometheus rounds half up), a negative
# and values each side of the clamps' bounds.
GAUGE = [
    ('gauge{job="a", instance="1"}', "-1.5x10"),
    ('gauge{job="a", instance="2"}', "2.5x10"),
    ('gauge{job="b", instance="1"}', "0.5x10"),
    ('gauge{job="b", instance="2"}', "-0.5x10"),
]
NAN_GAUGE = [('gauge{job="a"}', rep("NaN", 10))]
UP = [
    ('up{job="api", instance="host_1:9090"}', "1x10"),
    ('up{job="api", instance="other"}', "2x10"),
]

case("abs of negatives and positives", "1m", GAUGE, "abs(gauge)", "5m30s")
case("round half up (-1.5 to -1, 2.5 to 3, -0.5 to 0)", "1m", GAUGE, "round(gauge)", "5m30s")
case("round to the nearest 2", "1m", GAUGE, "round(gauge, 2)", "5m30s")
case("round to the nearest 0.3", "1m", GAUGE, "round(gauge, 0.3)", "5m30s")
case("clamp within bounds", "1m", GAUGE, "clamp(gauge, 0, 1)", "5m30s")
case("clamp with min above max gives nothing", "1m", GAUGE, "clamp(gauge, 2, 1)", "5m30s")
case("clamp with min equal to max", "1m", GAUGE, "clamp(gauge, 1, 1)", "5m30s")
case("clamp_min", "1m", GAUGE, "clamp_min(gauge, 0)", "5m30s")
case("clamp_max", "1m", GAUGE, "clamp_max(gauge, 0)", "5m30s")
case("clamp of NaN is NaN", "1m", NAN_GAUGE, "clamp(gauge, 0, 1)", "5m30s")
case("clamp_min of NaN is NaN", "1m", NAN_GAUGE, "clamp_min(gauge, 0)", "5m30s")
case("clamp_max of NaN is NaN", "1m", NAN_GAUGE, "clamp_max(gauge, 0)", "5m30s")
case("label_replace with a capture group; no match keeps the series", "1m", UP,
     'label_replace(up, "host", "$1", "instance", "(.*):.*")', "5m30s")
case("label_replace is anchored: a partial match is no match", "1m", UP,
     'label_replace(up, "host", "x", "instance", "host")', "5m30s")
# Two jobs, so that the series left without `instance` is told apart by its
# labels from the one that keeps it (an expectation matches by a subset).
case("label_replace with an empty result removes the label", "1m",
     [('up{job="a", instance="host_1:9090"}', "1x10"), ('up{job="b", instance="other"}', "2x10")],
     'label_replace(up, "instance", "", "instance", "other")', "5m30s")
case("label_replace with a named group and a missing source label (empty value)", "1m", UP,
     'label_replace(up, "port", "${p}", "instance", "[^:]*:(?P<p>[0-9]+)")', "5m30s")
case("label_replace from a label no series has matches the empty string", "1m", UP,
     'label_replace(up, "zone", "none", "region", "")', "5m30s")
case("timestamp is the sample's time, not the step's", "1m",
     [('gauge{job="a"}', "1 2 _ _ _ _ 7"), ('gauge{job="b"}', "1x10")], "timestamp(gauge)", "4m30s")
case("timestamp under offset", "1m", [('gauge{job="a"}', "1 2 3 4 5 6 7")],
     "timestamp(gauge offset 2m)", "5m30s")
case("timestamp of a computed value is the evaluation time", "1m",
     [('gauge{job="a"}', "1 2 _ _ _ _ 7")], "timestamp(abs(gauge))", "4m30s")
# promtool compares results as sets, so these hold sort's values and series,
# not its order (src/engine/instant.rs tests the order).
case("sort keeps the series and the metric name", "1m", GAUGE, "sort(gauge)", "5m30s")
case("sort_desc with NaN", "1m", GAUGE + [('gauge{job="c", instance="1"}', rep("NaN", 10))],
     "sort_desc(gauge)", "5m30s")
case("vector of a number", "1m", [], "vector(3)", "5m30s")
case("scalar of one series", "1m", [('gauge{job="a"}', "7x10")], "scalar(gauge)", "5m30s")
case("scalar of several series is NaN", "1m", GAUGE, "scalar(gauge)", "5m30s")
case("scalar of no series is NaN", "1m", GAUGE, 'scalar(gauge{job="c"})', "5m30s")
case("time at the evaluation time", "1m", [], "time()", "5m30s")
case("time in arithmetic with series", "1m", [('gauge{job="a"}', "7x10")],
     "gauge + on () vector(time())", "5m30s", dsl="gauge + on () time()")

# ------------------------------------------------------------- series notation

FINITE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
NUM = r"(?:%s|[+-]?Inf|NaN)" % FINITE
# promtool reads NaN and Inf only as single values ("NaNx3" is an identifier).
TOKEN_RE = re.compile(
    r"^(?:(?P<stale>stale)"
    r"|(?P<blank>_)(?:x(?P<bn>\d+))?"
    r"|(?P<a>%s)(?:(?P<sign>[+-])(?P<b>%s))?x(?P<n>\d+)"
    r"|(?P<single>%s))$" % (FINITE, FINITE, NUM))


def expand_values(values):
    """Sample indices of a promtool series notation, stale markers included
    (they sit on a timestamp as much as a sample does)."""
    out = []  # list of (index, kind) with kind 'sample' or 'stale'
    i = 0
    for tok in values.split():
        m = TOKEN_RE.match(tok)
        if not m:
            raise ParityError("cannot read series token %r in %r" % (tok, values))
        if m.group("stale"):
            out.append((i, "stale"))
            i += 1
        elif m.group("blank"):
            i += int(m.group("bn") or 1)
        elif m.group("single"):
            out.append((i, "sample"))
            i += 1
        else:
            n = int(m.group("n"))
            for _ in range(n + 1):
                out.append((i, "sample"))
                i += 1
    return out


# ---------------------------------------------------------------- durations

DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s|d|w|y)")
DUR_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1000, "m": 60000,
          "h": 3600000, "d": 86400000, "w": 7 * 86400000, "y": 365 * 86400000}


def dur_ms(s):
    if s == "0":
        return 0
    pos = 0
    total = 0.0
    for m in DUR_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * DUR_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ParityError("cannot read duration %r" % s)
    if total != int(total):
        raise ParityError("duration %r is not a whole number of milliseconds" % s)
    return int(total)


# ------------------------------------------------------------ static checks

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on"}
FORBIDDEN = {"ignoring", "group_left", "group_right", "irate", "histogram_fraction",
             "label_join", "idelta",
             "holt_winters", "resets", "stdvar_over_time", "present_over_time"}
PROMQL_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_:]*|\d[\w.]*|\s+|.')


def selectors(promql):
    """(name, range_ms or None, offset_ms, under_predict_linear) for each selector."""
    s = re.sub(r"\{[^}]*\}", "", promql)  # matchers: label names are not selectors
    s = re.sub(r"\b(by|without|on)\s*\([^)]*\)", r"\1", s)  # grouping lists
    toks = [t for t in PROMQL_TOKEN.findall(s) if not t.isspace()]
    out = []
    stack = []  # function name for each open parenthesis
    for k, t in enumerate(toks):
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        if t == "(":
            prev = toks[k - 1] if k else None
            stack.append(prev if prev and re.fullmatch(r"[A-Za-z_]\w*", prev) else None)
            continue
        if t == ")":
            stack.pop()
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_:]*", t) or t in KEYWORDS or t in ("Inf", "NaN"):
            continue
        if nxt in ("(", "by", "without"):
            if t in FORBIDDEN:
                raise ParityError("function %s is not in the rule language" % t)
            continue
        if toks[k - 1:k] == ["offset"]:
            continue
        rng = None
        j = k + 1
        if nxt and nxt.startswith("["):
            if ":" in nxt:
                raise ParityError("subqueries are not in the rule language")
            rng = dur_ms(nxt[1:-1])
            j += 1
        off = 0
        if j + 1 < len(toks) and toks[j] == "offset":
            off = dur_ms(toks[j + 1])
        out.append((t, rng, off, "predict_linear" in stack))
    if stack:
        raise ParityError("unbalanced parentheses in %r" % promql)
    return out


def check_case(c):
    if not re.fullmatch(r"[A-Za-z0-9 ,.;:()/+*%^<>=!&'_-]+", c["name"]):
        raise ParityError("odd characters in name %r" % c["name"])
    for word in FORBIDDEN | {"group_left", "ignoring"}:
        if re.search(r"\b%s\b" % word, c["dsl"]) or re.search(r"\b%s\s*\(" % word, c["promql"]):
            raise ParityError("%s uses %s" % (c["name"], word))
    step = dur_ms(c["interval"])
    t = dur_ms(c["eval_time"])
    stamps = {}  # metric name -> list of (timestamp_ms, kind, values_of_series)
    for s in c["series"]:
        m = re.fullmatch(r'([a-z_]+)(\{(.*)\})?', s["selector"])
        if not m:
            raise ParityError("series selector %r" % s["selector"])
        for lm in re.finditer(r'\s*([^=,\s]+)\s*=\s*"([^"]*)"\s*,?', m.group(3) or ""):
            if not re.fullmatch(r"[a-z_]+", lm.group(1)):
                raise ParityError("label name %r is not plain [a-z_]" % lm.group(1))
        stamps.setdefault(m.group(1), []).append(
            [(i * step, kind) for i, kind in expand_values(s["values"])])
    sels = selectors(c["promql"])
    # vector(s) and time() are the only queries that need no series.
    if not sels and not re.search(r"\b(vector|time)\s*\(", c["promql"]):
        raise ParityError("%s: no selector found" % c["name"])
    for name, rng, off, in_predict in sels:
        window = rng if rng is not None else LOOKBACK_MS
        edge = t - off - window
        end = t - off
        for series in stamps.get(name, []):
            for ts, _ in series:
                if ts == edge:
                    raise ParityError("%s: a sample of %s sits on the left edge %dms of a %dms window"
                                      % (c["name"], name, edge, window))
            if in_predict:
                n = sum(1 for ts, kind in series if kind == "sample" and edge < ts <= end)
                if n >= 12:
                    raise ParityError("%s: predict_linear over %d samples (must be < 12)" % (c["name"], n))


# ---------------------------------------------------------------- promtool runs

def yq(s):
    """YAML single-quoted scalar."""
    return "'" + s.replace("'", "''") + "'"


def yaml_float(v):
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    return repr(v)


def test_file(c, exp):
    lines = ["tests:",
             "  - interval: %s" % c["interval"],
             "    input_series:"]
    for s in c["series"]:
        lines += ["      - series: %s" % yq(s["selector"]),
                  "        values: %s" % yq(s["values"])]
    lines += ["    promql_expr_test:",
              "      - expr: %s" % yq(c["promql"]),
              "        eval_time: %s" % c["eval_time"]]
    if not exp:
        lines.append("        exp_samples: []")
    else:
        lines.append("        exp_samples:")
        for labels_str, v in exp:
            lines += ["          - labels: %s" % yq(labels_str),
                      "            value: %s" % yaml_float(v)]
    return "\n".join(lines) + "\n"


def run_promtool(promtool, path):
    p = subprocess.run([promtool, "test", "rules", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


GO_QUOTED = r'"(?:[^"\\]|\\.)*"'
BLOCK_RE = re.compile(
    r"\A  FAILED:\n"
    r"    expr: (?P<expr>%s), time: (?P<time>[0-9a-zµ.]+),\n"
    r"        exp: (?P<exp>.*)\n"
    r"        got: (?P<got>.*)\n\Z" % GO_QUOTED)
ERR_RE = re.compile(r"    expr: %s, time: [^,]+, err: (.*)" % GO_QUOTED)
FLOAT_RE = re.compile(r"NaN|[+-]Inf|-?\d(?:\.\d+)?E[+-]\d+")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)=(%s)' % GO_QUOTED)


def go_unquote(q):
    body = q[1:-1]
    out = []
    i = 0
    simple = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "a": "\a",
              "b": "\b", "f": "\f", "v": "\v", "'": "'"}
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        e = body[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif e == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif e == "U":
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        else:
            raise ParityError("unknown escape \\%s in %s" % (e, q))
    return "".join(out)


def parse_samples(text):
    """Parse promtool's parsedSamplesString: `nil` or `{l="v", ...} F, {...} F`."""
    if text == "nil":
        return []
    out = []
    pos = 0
    while True:
        if text[pos:pos + 1] != "{":
            raise ParityError("expected '{' at %d in %r" % (pos, text))
        pos += 1
        labels = {}
        raw = []
        while text[pos] != "}":
            m = LABEL_RE.match(text, pos)
            if not m:
                raise ParityError("cannot read a label at %d in %r" % (pos, text))
            name, value = m.group(1), go_unquote(m.group(2))
            if name in labels:
                raise ParityError("label %s twice in %r" % (name, text))
            labels[name] = value
            raw.append(m.group(0))
            pos = m.end()
            if text.startswith(", ", pos):
                pos += 2
            elif text[pos] != "}":
                raise ParityError("expected ', ' or '}' at %d in %r" % (pos, text))
        pos += 1
        if text[pos] != " ":
            raise ParityError("expected ' ' at %d in %r" % (pos, text))
        pos += 1
        m = FLOAT_RE.match(text, pos)
        if not m:
            raise ParityError("cannot read a value at %d in %r" % (pos, text))
        value = float(m.group(0))
        pos = m.end()
        out.append(("{" + ", ".join(raw) + "}", labels, value, m.group(0)))
        if pos == len(text):
            return out
        if not text.startswith(", ", pos):
            raise ParityError("expected ', ' or the end at %d in %r" % (pos, text))
        pos += 2


def check_header(c, m):
    expr = go_unquote(m.group("expr"))
    if expr != c["promql"]:
        raise ParityError("%s: promtool reports expr %r" % (c["name"], expr))
    if dur_ms(m.group("time")) != dur_ms(c["eval_time"]):
        raise ParityError("%s: promtool reports time %s" % (c["name"], m.group("time")))


def evaluate(promtool, c, work, idx):
    # Pass 1: a sample nobody has makes promtool fail and print what it got.
    path = os.path.join(work, "case%03d-pass1.yml" % idx)
    with open(path, "w") as f:
        f.write(test_file(c, [(NO_MATCH_LABELS, 0.0)]))
    rc, out, err = run_promtool(promtool, path)
    if not out.startswith("Unit Testing:"):
        raise ParityError("%s: unexpected stdout %r" % (c["name"], out))
    em = ERR_RE.search(err)
    if em:
        raise ParityError("%s: promtool could not evaluate %r: %s" % (c["name"], c["promql"], em.group(1)))
    m = BLOCK_RE.match(err)
    if rc != 1 or not m:
        raise ParityError("%s: cannot read promtool's output (rc %d):\n%s" % (c["name"], rc, err))
    check_header(c, m)
    if m.group("exp") != NO_MATCH_LINE:
        raise ParityError("%s: promtool reports exp %r" % (c["name"], m.group("exp")))
    got = parse_samples(m.group("got"))

    # Pass 2: promtool must agree exactly with the values as read back.
    path = os.path.join(work, "case%03d-pass2.yml" % idx)
    with open(path, "w") as f:
        f.write(test_file(c, [(raw, v) for raw, _, v, _ in got]))
    rc, out, err = run_promtool(promtool, path)
    has_nan = any(math.isnan(v) for _, _, v, _ in got)
    if rc != 0:
        m = BLOCK_RE.match(err)
        if not (has_nan and rc == 1 and m and m.group("exp") == m.group("got")):
            raise ParityError("%s: confirmation pass failed (rc %d):\n%s" % (c["name"], rc, err))
        check_header(c, m)
        # The exact text matched; it must also be the text of pass 1.
        if [s[3] for s in parse_samples(m.group("got"))] != [s[3] for s in got]:
            raise ParityError("%s: values changed between passes" % c["name"])
    elif has_nan:
        raise ParityError("%s: a NaN compared equal, promtool's comparison is not what this script assumes"
                          % c["name"])

    expected = []
    seen = set()
    for _, labels, v, _ in got:
        labels = {k: labels[k] for k in sorted(labels) if k != "__name__"}
        key = tuple(sorted(labels.items()))
        if key in seen:
            raise ParityError("%s: two results with labels %r once __name__ is dropped" % (c["name"], labels))
        seen.add(key)
        if math.isnan(v):
            jv = "NaN"
        elif math.isinf(v):
            jv = "+Inf" if v > 0 else "-Inf"
        else:
            jv = v
        expected.append({"labels": labels, "value": jv})
    return expected


# ------------------------------------------------------------ the rule file

def rule_number(v):
    """A value as the rule language reads it back to the same float64."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def json_number(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}[v]
    return float(v)


def label_map(labels):
    return ", ".join('%s="%s"' % (k, labels[k]) for k in sorted(labels))


HEADER = """\
# PromQL parity: for each case, the values promtool 2.42 (Prometheus's own
# engine) gave for the same series and query, as test blocks in the rule
# language. Generated by `python3 scripts/promql-parity.py`; edit the cases
# there, not here. tests/it/lang.rs runs this file with the rest of
# tests/lang/ (`mcpops test tests/lang/promql_parity.rules` does the same).
#
# The `count without (...)` line of each case holds the result to exactly the
# listed series: `expect value(..) { labels }` alone would pass with more.
"""


def render_rules(result):
    out = [HEADER.rstrip("\n")]
    for c in result:
        out.append("")
        out.append('test "%s" {' % c["name"])
        out.append("  # promql: %s" % c["promql"])
        out.append("  interval %s" % c["interval"])
        for s in c["series"]:
            out.append('  series %s = "%s"' % (s["selector"], s["values"]))
        at = c["eval_time"]
        if not c["expected"]:
            out.append("  expect value(%s) at %s == none" % (c["dsl"], at))
        names = set()
        for e in c["expected"]:
            names |= set(e["labels"])
            line = "  expect value(%s) at %s == %s" % (c["dsl"], at, rule_number(json_number(e["value"])))
            if e["labels"]:
                line += " { %s }" % label_map(e["labels"])
            out.append(line)
        if c["expected"]:
            count = "count without (%s) (%s)" % (", ".join(sorted(names)), c["dsl"]) if names \
                else "count(%s)" % c["dsl"]
            out.append("  expect value(%s) at %s == %d" % (count, at, len(c["expected"])))
        out.append("}")
    return "\n".join(out) + "\n"


def from_json(path):
    """The cases with the expected values of an earlier JSON output."""
    with open(path) as f:
        old = {c["name"]: c for c in json.load(f)}
    result = []
    for c in CASES:
        o = old.pop(c["name"], None)
        if o is None:
            raise ParityError("%s: not in %s" % (c["name"], path))
        for k in ("interval", "series", "promql", "dsl", "eval_time"):
            if o[k] != c[k]:
                raise ParityError("%s: %s is %r in %s, %r here" % (c["name"], k, o[k], path, c[k]))
        result.append(dict(c, expected=o["expected"]))
    if old:
        raise ParityError("%s holds cases this script does not: %s" % (path, ", ".join(sorted(old))))
    return result


def from_promtool(promtool, keep):
    version = subprocess.run([promtool, "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True).stdout.splitlines()[0]
    print("using %s: %s" % (promtool, version), file=sys.stderr)
    work = tempfile.mkdtemp(prefix="promql-parity-")
    try:
        result = []
        for idx, c in enumerate(CASES):
            expected = evaluate(promtool, c, work, idx)
            result.append(dict(c, expected=expected))
    finally:
        if keep:
            print("test files kept in %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    ap.add_argument("--from-json", metavar="FILE")
    ap.add_argument("--output", default=DEFAULT_OUTPUT)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    names = set()
    for c in CASES:
        if c["name"] in names:
            raise ParityError("duplicate case name %r" % c["name"])
        names.add(c["name"])
        check_case(c)

    if args.from_json:
        result = from_json(args.from_json)
    else:
        result = from_promtool(args.promtool, args.keep)

    text = render_rules(result)
    if args.check:
        with open(args.output) as f:
            if f.read() != text:
                print("%s is out of date" % args.output, file=sys.stderr)
                return 1
        print("%s is up to date (%d cases)" % (args.output, len(result)), file=sys.stderr)
        return 0
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    empty = sum(1 for r in result if not r["expected"])
    print("wrote %d cases (%d with an empty result) to %s" % (len(result), empty, args.output),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ParityError as e:
        print("promql-parity: %s" % e, file=sys.stderr)
        sys.exit(1)
