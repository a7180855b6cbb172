//! Writing a simulated server: its calls as JSON lines and its gauges as
//! OpenMetrics text, plain or gzipped (with a fixed header, so the bytes
//! depend on nothing but the data).

use super::plan::{ServerPlan, Window};
use super::sim::{CallError, GaugeRow, ServerData};
use super::{GenerateError, io_error};
use crate::names;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

const BUFFER: usize = 1 << 16;

pub(crate) enum Out {
    Plain(BufWriter<File>),
    Gz(Box<BufWriter<GzEncoder<File>>>),
}

impl Out {
    pub(crate) fn create(path: &Path, gzip: bool) -> io::Result<Out> {
        let file = File::create(path)?;
        Ok(if gzip {
            let encoder = GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(file, Compression::best());
            Out::Gz(Box::new(BufWriter::with_capacity(BUFFER, encoder)))
        } else {
            Out::Plain(BufWriter::with_capacity(BUFFER, file))
        })
    }

    pub(crate) fn finish(self) -> io::Result<()> {
        match self {
            Out::Plain(w) => {
                w.into_inner().map_err(|e| e.into_error())?;
            }
            Out::Gz(w) => {
                w.into_inner().map_err(|e| e.into_error())?.finish()?;
            }
        }
        Ok(())
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Plain(w) => w.write(buf),
            Out::Gz(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Out::Plain(w) => w.write_all(buf),
            Out::Gz(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Plain(w) => w.flush(),
            Out::Gz(w) => w.flush(),
        }
    }
}

/// (year, month, day) of a day number since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats `ms` as `2026-11-16T00:00:01.234Z`, caching the date part.
struct TsFormat {
    day: i64,
    date: String,
}

impl TsFormat {
    fn new() -> Self {
        TsFormat {
            day: i64::MIN,
            date: String::new(),
        }
    }

    fn write(&mut self, w: &mut impl Write, ms: i64) -> io::Result<()> {
        let day = ms.div_euclid(86_400_000);
        if day != self.day {
            let (y, m, d) = civil_from_days(day);
            self.day = day;
            self.date = format!("{y:04}-{m:02}-{d:02}");
        }
        let in_day = ms.rem_euclid(86_400_000);
        let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
        let (min, rest) = (rest / 60_000, rest % 60_000);
        let (s, milli) = (rest / 1000, rest % 1000);
        write!(w, "{}T{h:02}:{min:02}:{s:02}.{milli:03}Z", self.date)
    }
}

/// Writes `calls/<server>.jsonl[.gz]`.
pub(crate) fn calls(
    path: &Path,
    gzip: bool,
    plan: &ServerPlan,
    data: &ServerData,
) -> Result<(), GenerateError> {
    let io = || -> io::Result<()> {
        let mut w = Out::create(path, gzip)?;
        let mut ts = TsFormat::new();
        for c in &data.calls {
            let session = &data.sessions[c.session as usize];
            w.write_all(b"{\"ts\":\"")?;
            ts.write(&mut w, c.ts)?;
            write!(
                w,
                "\",\"server\":\"{}\",\"method\":\"{}\",\"tool\":",
                plan.name,
                c.method.as_str()
            )?;
            match plan.tools.get(c.tool as usize) {
                Some(t) => write!(w, "\"{}\"", t.name)?,
                None => w.write_all(b"null")?,
            }
            write!(w, ",\"duration_ms\":{:.1},\"error\":", c.duration_ms)?;
            w.write_all(match c.error {
                CallError::None => b"null".as_slice(),
                CallError::Internal => b"-32603",
                CallError::InvalidParams => b"-32602",
                CallError::Timeout => b"\"timeout\"",
            })?;
            writeln!(
                w,
                ",\"session\":\"s-{:010x}\",\"transport\":\"{}\"}}",
                session.id,
                if session.http {
                    "streamable-http"
                } else {
                    "stdio"
                }
            )?;
        }
        w.finish()
    };
    io().map_err(io_error(path))
}

/// One gauge family of the metrics file.
struct Family {
    name: &'static str,
    unit: Option<&'static str>,
    help: &'static str,
}

const FAMILIES: [Family; 8] = [
    Family {
        name: names::CPU,
        unit: Some("ratio"),
        help: "CPU used by the server process over the last minute, 0 to 1.",
    },
    Family {
        name: names::MEMORY,
        unit: Some("bytes"),
        help: "Resident memory of the server process.",
    },
    Family {
        name: names::MEMORY_LIMIT,
        unit: Some("bytes"),
        help: "Memory limit of the server process; it is killed at the limit.",
    },
    Family {
        name: names::SESSIONS,
        unit: None,
        help: "MCP sessions open.",
    },
    Family {
        name: names::SESSIONS_LIMIT,
        unit: None,
        help: "Most MCP sessions the server accepts.",
    },
    Family {
        name: names::IN_FLIGHT,
        unit: None,
        help: "Requests being served, averaged over the last minute.",
    },
    Family {
        name: names::DISK_FREE,
        unit: Some("bytes"),
        help: "Free bytes on the server's data volume.",
    },
    Family {
        name: names::DISK_TOTAL,
        unit: Some("bytes"),
        help: "Size of the server's data volume.",
    },
];

fn write_value(
    w: &mut impl Write,
    family: usize,
    plan: &ServerPlan,
    row: &GaugeRow,
) -> io::Result<()> {
    match family {
        0 => write!(w, "{:.3}", row.cpu),
        1 => write!(w, "{}", row.memory as u64),
        2 => write!(w, "{}", plan.mem_limit as u64),
        3 => write!(w, "{}", row.sessions),
        4 => write!(w, "{}", plan.sessions_limit),
        5 => write!(w, "{:.3}", row.in_flight),
        6 => write!(w, "{}", row.disk_free as u64),
        _ => write!(w, "{}", plan.disk_total as u64),
    }
}

/// Writes `ms` as OpenMetrics seconds: whole when it can, else with milliseconds.
pub(crate) fn write_seconds(w: &mut impl Write, ms: i64) -> io::Result<()> {
    let (secs, ms) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if ms == 0 {
        write!(w, "{secs}")
    } else {
        write!(w, "{secs}.{ms:03}")
    }
}

/// Writes `metrics/<server>.om[.gz]`, families one after another; returns
/// the number of samples.
pub(crate) fn metrics(
    path: &Path,
    gzip: bool,
    plan: &ServerPlan,
    window: Window,
    data: &ServerData,
) -> Result<u64, GenerateError> {
    let io = || -> io::Result<u64> {
        let mut w = Out::create(path, gzip)?;
        let mut samples = 0u64;
        for (f, family) in FAMILIES.iter().enumerate() {
            writeln!(w, "# TYPE {} gauge", family.name)?;
            if let Some(unit) = family.unit {
                writeln!(w, "# UNIT {} {unit}", family.name)?;
            }
            writeln!(w, "# HELP {} {}", family.name, family.help)?;
            for (j, row) in data.gauges.iter().enumerate() {
                let Some(row) = row else { continue };
                write!(w, "{}{{server=\"{}\"}} ", family.name, plan.name)?;
                write_value(&mut w, f, plan, row)?;
                w.write_all(b" ")?;
                write_seconds(&mut w, window.start + 60_000 * (j as i64 + 1))?;
                w.write_all(b"\n")?;
                samples += 1;
            }
        }
        w.write_all(b"# EOF\n")?;
        w.finish()?;
        Ok(samples)
    };
    io().map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339_millis() {
        let mut f = TsFormat::new();
        for ms in [
            0i64,
            1_794_787_201_234,
            951_782_400_000 + 86_399_999, // 2000-02-29
            4_102_444_800_000,            // 2100-01-01
            -1,
        ] {
            let mut out = Vec::new();
            f.write(&mut out, ms).unwrap();
            let want = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
