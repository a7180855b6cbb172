//! The dashboard's charts as inline SVG, drawn with plotters' SVG backend:
//! a series over time (with anomalies marked, a forecast projected with its
//! 80% band, a limit and the date it is reached), the alert timeline, and
//! horizontal bars. Text is left to the browser (SVG `<text>`), so no font
//! files are needed; it is at least 12 px, as a dashboard next to Grafana's
//! must be read. Time axes tick on whole hours or days (UTC) and value axes
//! carry their unit ([`super::human_value`]).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

const HOUR_MS: f64 = crate::time::HOUR_MS as f64;
const FONT: &str = "sans-serif";
const BLUE_LINE: RGBColor = RGBColor(37, 99, 235);
const ORANGE: RGBColor = RGBColor(234, 88, 12);
const RED_MARK: RGBColor = RGBColor(220, 38, 38);
const GREY: RGBColor = RGBColor(107, 114, 128);
const AMBER: RGBColor = RGBColor(217, 119, 6);
/// plotters' SVG backend writes a font's size divided by 1.24 (its
/// points-to-em factor): this is the size to ask for `px` pixels.
const fn px(px: f64) -> f64 {
    px * 1.24
}
/// Text sizes, in pixels as the browser draws them: captions, tick labels
/// and legends, axis names.
const CAPTION: f64 = px(16.0);
const LABEL: f64 = px(13.0);
const AXIS: f64 = px(13.0);

/// A chart is drawn only when its values lie within ±this. plotters asserts
/// that an axis range is not NaN, and its tick search loops forever on a
/// range whose width (or ten times its tick scale) is infinite: past about
/// 1e307 the width of an axis overflows. The analyzer's values stay within
/// ±1e150; this bounds what a forecast extrapolates.
const MAX_CHART_VALUE: f64 = 1e200;

/// What a series chart shows besides the series.
#[derive(Default)]
pub struct Overlay {
    /// Anomalous spans [start, end) in ms.
    pub anomalies: Vec<(i64, i64)>,
    /// Projected (t, value, lower, upper).
    pub forecast: Vec<(i64, f64, f64, f64)>,
    /// A limit drawn as a horizontal line, with its name.
    pub limit: Option<(f64, String)>,
    /// A time marked with a vertical line, with its label (exhaustion).
    pub marker: Option<(i64, String)>,
}

/// A time axis in hours since the UTC midnight before the data, so that
/// plotters' round tick values fall on whole hours.
#[derive(Clone, Copy)]
struct TimeAxis {
    origin_ms: i64,
}

impl TimeAxis {
    fn from(first_ms: i64) -> TimeAxis {
        let day = 24 * HOUR_MS as i64;
        TimeAxis {
            origin_ms: first_ms.div_euclid(day) * day,
        }
    }

    fn x(&self, t_ms: i64) -> f64 {
        t_ms.saturating_sub(self.origin_ms) as f64 / HOUR_MS
    }

    /// A tick's text: the date at midnight ("2026-11-16"), else the hour ("12:00").
    fn label(&self, x: f64) -> String {
        let ms = self.origin_ms + (x * HOUR_MS).round() as i64;
        let text = crate::time::format_ms(ms);
        if ms.rem_euclid(24 * HOUR_MS as i64) == 0 {
            text.get(..10).unwrap_or_default().to_string()
        } else {
            text.get(11..16).unwrap_or_default().to_string()
        }
    }

    /// Ticks on whole hours or days between x0 and x1 (hours since the
    /// origin, a UTC midnight): the smallest step of 1, 2, 3, 6 or 12 hours,
    /// or whole days, that leaves at most `most` ticks.
    fn ticks(&self, x0: f64, x1: f64, most: usize) -> Vec<f64> {
        let span = (x1 - x0).max(0.0);
        let step = [1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 48.0, 72.0, 168.0]
            .into_iter()
            .find(|s| span / s <= most as f64)
            .unwrap_or_else(|| (span / most as f64 / 24.0).ceil() * 24.0);
        let first = (x0 / step).ceil() as i64;
        let last = (x1 / step).floor() as i64;
        (first..=last).map(|k| k as f64 * step).collect()
    }
}

/// A time axis (hours, as [`TimeAxis`] counts them) whose ticks are the
/// given whole hours or days, rather than plotters' round numbers of hours
/// (every 5 hours, say, which never falls on midnight).
struct HourTicks {
    range: RangedCoordf64,
    ticks: Vec<f64>,
}

impl HourTicks {
    fn new(x0: f64, x1: f64, ticks: Vec<f64>) -> HourTicks {
        HourTicks {
            range: (x0..x1).into(),
            ticks,
        }
    }
}

impl Ranged for HourTicks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light grid lines ask for more points than labels: the same ones.
        if hint.max_num_points() == 0 {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.range()
    }
}

/// Values with SI-ish suffixes so axes stay narrow.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a == 0.0 {
        "0".to_string()
    } else {
        // Three significant digits, trailing zeros dropped: 0.25, 0.00123.
        let digits = (2 - a.log10().floor() as i32).clamp(0, 12) as usize;
        let text = format!("{v:.digits$}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A line chart of `points` (ms, value) with the overlay; `None` when there
/// is nothing to draw.
pub fn series(
    title: &str,
    unit: &str,
    points: &[(i64, f64)],
    overlay: &Overlay,
    size: (u32, u32),
) -> Option<String> {
    let first = points.iter().find(|(_, v)| v.is_finite())?.0;
    let axis = TimeAxis::from(first);
    let ax = |t: i64| axis.x(t);
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (ax(*t), *v))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let mut x0 = pts[0].0;
    let mut x1 = pts[pts.len() - 1].0;
    let mut lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let non_negative = lo >= 0.0;
    // The axis holds the series, the forecast's central line and the limit;
    // the 80% band is clamped to it rather than stretching it (a flat series'
    // band can be ±1000 around nothing).
    for (t, v, _, _) in &overlay.forecast {
        x1 = x1.max(ax(*t));
        if v.is_finite() {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
    }
    if let Some((limit, _)) = &overlay.limit
        && limit.is_finite()
    {
        lo = lo.min(*limit);
        hi = hi.max(*limit);
    }
    if let Some((t, _)) = &overlay.marker {
        x1 = x1.max(ax(*t) + 1.0);
        x0 = x0.min(ax(*t));
    }
    if hi <= lo {
        // A flat series: a band of 10% of its level around it (or ±1 at 0).
        let half = (lo.abs() * 0.1).max(1.0);
        hi = lo + half;
        lo -= half;
    }
    let pad = (hi - lo) * 0.05;
    let (mut lo, hi) = (lo - pad, hi + pad);
    if non_negative {
        lo = lo.max(0.0);
    }
    // Written so that NaN is not drawable either.
    let drawable = |v: f64| v.abs() <= MAX_CHART_VALUE;
    if !drawable(lo) || !drawable(hi) {
        return None;
    }
    let ticks = axis.ticks(x0, x1, 6);

    let mut svg = String::new();
    let drawn: Result<(), String> = (|| {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, CAPTION))
            .margin(10)
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(100)
            .build_cartesian_2d(HourTicks::new(x0, x1, ticks), lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .y_labels(5)
            .x_label_formatter(&|x| axis.label(*x))
            .y_label_formatter(&|y| super::human_value(*y, unit))
            .x_desc("time (UTC)")
            // Every tick label carries the unit: no rotated axis name to
            // collide with them.
            .axis_desc_style((FONT, AXIS))
            .label_style((FONT, LABEL))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(err)?;
        for (a, b) in &overlay.anomalies {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(ax(*a), lo), (ax(*b), hi)],
                    RED_MARK.mix(0.15).filled(),
                )))
                .map_err(err)?;
        }
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied(),
                BLUE_LINE.stroke_width(1),
            ))
            .map_err(err)?
            .label("observed")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE_LINE));
        if !overlay.forecast.is_empty() {
            let band: Vec<(f64, f64)> = overlay
                .forecast
                .iter()
                .map(|(t, _, l, _)| (ax(*t), l.clamp(lo, hi)))
                .chain(
                    overlay
                        .forecast
                        .iter()
                        .rev()
                        .map(|(t, _, _, u)| (ax(*t), u.clamp(lo, hi))),
                )
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    ORANGE.mix(0.18).filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(DashedLineSeries::new(
                    overlay
                        .forecast
                        .iter()
                        .map(|(t, v, _, _)| (ax(*t), v.clamp(lo, hi))),
                    6,
                    4,
                    ORANGE.stroke_width(2),
                ))
                .map_err(err)?
                .label("forecast (80% band)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], ORANGE.stroke_width(2)));
        }
        if let Some((limit, name)) = &overlay.limit {
            chart
                .draw_series(LineSeries::new(
                    [(x0, *limit), (x1, *limit)],
                    RED_MARK.stroke_width(1),
                ))
                .map_err(err)?
                .label(name.as_str())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED_MARK));
        }
        if let Some((t, label)) = &overlay.marker {
            let x = ax(*t);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(x, lo), (x, hi)],
                    RED_MARK.stroke_width(2),
                )))
                .map_err(err)?;
            let style = TextStyle::from((FONT, LABEL).into_font())
                .color(&RED_MARK)
                .pos(Pos::new(HPos::Right, VPos::Top));
            chart
                .draw_series(std::iter::once(Text::new(label.clone(), (x, hi), style)))
                .map_err(err)?;
        }
        if !overlay.anomalies.is_empty() {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, hi), (x0, hi)],
                    RED_MARK.mix(0.3).filled(),
                )))
                .map_err(err)?
                .label("anomaly")
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], RED_MARK.mix(0.3).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(GREY)
            .label_font((FONT, LABEL))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)
    })();
    drawn.ok().map(|()| svg)
}

/// One bar of the alert timeline.
pub struct Span {
    pub row: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The alert's severity as the verdict weighs it (an `info` alert: ok).
    pub level: super::Level,
    /// Still active at the end of the period.
    pub open: bool,
}

/// Alerts over the period: a row per alert and server, a bar per episode.
pub fn timeline(spans: &[Span], from_ms: i64, to_ms: i64, width: u32) -> Option<String> {
    if spans.is_empty() || to_ms <= from_ms {
        return None;
    }
    let mut rows: Vec<&str> = spans.iter().map(|s| s.row.as_str()).collect();
    rows.sort_unstable();
    rows.dedup();
    let height = 80 + 26 * rows.len() as u32;
    let n = rows.len() as f64;
    let axis = TimeAxis::from(from_ms);
    let (x0, x1) = (axis.x(from_ms), axis.x(to_ms));
    let ticks = axis.ticks(x0, x1, 10);
    let mut svg = String::new();
    let drawn: Result<(), String> = (|| {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(40)
            .x_label_area_size(40)
            .y_label_area_size(300)
            .build_cartesian_2d(HourTicks::new(x0, x1, ticks), -0.5..n - 0.5)
            .map_err(err)?;
        let labels = rows.clone();
        chart
            .configure_mesh()
            .y_labels(rows.len())
            .x_label_formatter(&|x| axis.label(*x))
            .y_label_formatter(&|y| row_label(*y, &labels))
            .disable_y_mesh()
            .x_desc("time (UTC)")
            .label_style((FONT, LABEL))
            .axis_desc_style((FONT, AXIS))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(err)?;
        let row_of = |r: &str| rows.iter().position(|x| *x == r).unwrap_or(0) as f64;
        chart
            .draw_series(spans.iter().map(|s| {
                let y = n - row_of(&s.row) - 1.0;
                let color = match s.level {
                    super::Level::Critical => RED_MARK,
                    super::Level::Warning => AMBER,
                    super::Level::Ok => GREY,
                };
                let end = s.end_ms.max(s.start_ms + 60_000).min(to_ms);
                Rectangle::new(
                    [(axis.x(s.start_ms), y - 0.3), (axis.x(end), y + 0.3)],
                    color.mix(if s.open { 1.0 } else { 0.75 }).filled(),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)
    })();
    drawn.ok().map(|()| svg)
}

/// The label of the row centred on `y`: row i of n sits at y = n − 1 − i,
/// so the first row is on top; positions between rows have none.
fn row_label(y: f64, labels: &[&str]) -> String {
    let n = labels.len() as f64;
    let i = n - 1.0 - y.round();
    if (y - y.round()).abs() < 1e-6 && i >= 0.0 && i < n {
        labels[i as usize].to_string()
    } else {
        String::new()
    }
}

/// Horizontal bars of `values` (shares, 0..1) with their labels, largest on top.
pub fn bars(title: &str, items: &[(String, f64)], width: u32) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let n = items.len() as f64;
    let max = items
        .iter()
        .map(|i| i.1)
        .filter(|v| v.abs() <= MAX_CHART_VALUE)
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let height = 70 + 26 * items.len() as u32;
    let mut svg = String::new();
    let drawn: Result<(), String> = (|| {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, CAPTION))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(280)
            .build_cartesian_2d(0.0..max, -0.5..n - 0.5)
            .map_err(err)?;
        let labels: Vec<&str> = items.iter().map(|i| i.0.as_str()).collect();
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(items.len())
            .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
            .y_label_formatter(&|y| row_label(*y, &labels))
            .disable_y_mesh()
            .label_style((FONT, LABEL))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
                let y = n - i as f64 - 1.0;
                let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, max) };
                Rectangle::new([(0.0, y - 0.3), (v, y + 0.3)], BLUE_LINE.mix(0.8).filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)
    })();
    drawn.ok().map(|()| svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testutil::HOSTILE;

    const T0: i64 = 1_795_305_600_000;

    fn points(h: f64) -> Vec<(i64, f64)> {
        (0..300i64)
            .map(|i| (T0 + i * 300_000, if i == 150 { h } else { (i % 17) as f64 }))
            .collect()
    }

    /// plotters asserts on a NaN axis and loops forever on an infinite
    /// one: a chart whose values overflow the axis is left out, one with a
    /// huge but drawable spike is drawn, and nothing panics or hangs.
    #[test]
    fn charts_survive_hostile_values() {
        for h in HOSTILE {
            let plain = series("s", "u", &points(h), &Overlay::default(), (600, 300));
            if h.is_finite() && h.abs() < 1e200 || !h.is_finite() {
                assert!(
                    plain.as_deref().is_some_and(|s| s.starts_with("<svg")),
                    "{h}"
                );
            } else {
                assert!(plain.is_none(), "{h}");
            }
            let overlay = Overlay {
                anomalies: vec![(T0, T0 + 600_000)],
                forecast: vec![
                    (T0 + 300 * 300_000, 20.0, h, 30.0),
                    (T0 + 301 * 300_000, h, 10.0, h),
                ],
                limit: Some((h, "limit".into())),
                marker: Some((T0 + 301 * 300_000, "full".into())),
            };
            let _ = series("s", "u", &points(1.0), &overlay, (600, 300));
            let _ = series("s", "u", &points(h), &overlay, (600, 300));
            let items = vec![("a".to_string(), 0.5), ("b".to_string(), h)];
            assert!(bars("b", &items, 600).is_some(), "{h}");
        }
        // Every value hostile: nothing to draw.
        for h in HOSTILE {
            let all: Vec<(i64, f64)> = (0..10).map(|i| (T0 + i, h)).collect();
            let _ = series("s", "u", &all, &Overlay::default(), (600, 300));
        }
    }

    /// Ticks fall on whole hours or midnights, a midnight tick names its
    /// day with the year, and there are never more than asked for.
    #[test]
    fn time_ticks_fall_on_whole_hours_and_days() {
        let axis = TimeAxis::from(T0 + 7 * 3_600_000 + 123);
        for (hours, most) in [(5.5, 6), (30.0, 6), (72.0, 6), (24.0 * 30.0, 6), (2.0, 10)] {
            let x0 = axis.x(T0 + 7 * 3_600_000 + 123);
            let ticks = axis.ticks(x0, x0 + hours, most);
            assert!(
                !ticks.is_empty() && ticks.len() <= most,
                "{hours}: {ticks:?}"
            );
            for t in &ticks {
                assert_eq!(t.fract(), 0.0, "{t}");
                assert!(*t >= x0 && *t <= x0 + hours);
            }
            if hours >= 24.0 * 7.0 {
                assert!(ticks.iter().all(|t| t % 24.0 == 0.0), "{ticks:?}");
            }
        }
        assert_eq!(axis.label(24.0), "2026-11-23");
        assert_eq!(axis.label(36.0), "12:00");
    }

    /// A flat series with a forecast band of ±1000: the axis stays within
    /// 10% of the series' level (the band is clamped to it), not -1000..1000.
    #[test]
    fn a_wide_forecast_band_does_not_stretch_a_flat_series() {
        let flat: Vec<(i64, f64)> = (0..100).map(|i| (T0 + i * 300_000, 5.0)).collect();
        let overlay = Overlay {
            forecast: (100..110)
                .map(|i| (T0 + i * 300_000, 5.0, -1000.0, 1000.0))
                .collect(),
            ..Overlay::default()
        };
        let svg = series("s", "sessions", &flat, &overlay, (600, 300)).unwrap();
        // The value axis' labels: the texts that end in the unit.
        let labels: Vec<f64> = svg
            .split("</text>")
            .filter_map(|t| t.rsplit('>').next())
            .filter_map(|t| t.trim().strip_suffix(" sessions"))
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(labels.len() >= 3, "{svg}");
        for v in labels {
            assert!((4.0..=6.0).contains(&v), "{v} in {svg}");
        }
    }

    /// Every text of every chart is at least 12 px.
    #[test]
    fn chart_text_is_readable() {
        let overlay = Overlay {
            anomalies: vec![(T0, T0 + 600_000)],
            forecast: vec![(T0 + 300 * 300_000, 20.0, 10.0, 30.0)],
            limit: Some((40.0, "limit".into())),
            marker: Some((T0 + 300 * 300_000, "full".into())),
        };
        let spans = [Span {
            row: "Alert a".into(),
            start_ms: T0,
            end_ms: T0 + 3_600_000,
            level: super::super::Level::Critical,
            open: false,
        }];
        let svgs = [
            series("s", "bytes", &points(3.0), &overlay, (600, 300)).unwrap(),
            timeline(&spans, T0, T0 + 86_400_000, 1000).unwrap(),
            bars("b", &[("a".to_string(), 0.5)], 600).unwrap(),
        ];
        for svg in &svgs {
            let sizes: Vec<f64> = svg
                .split("font-size=\"")
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
                .collect();
            assert!(!sizes.is_empty());
            for size in sizes {
                assert!(size >= 12.0, "{size} px");
            }
        }
    }
}
