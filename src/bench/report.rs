//! The bench's results: one row per workload (rkube, its floor, the ratio, the goal and
//! whether it was met), printed as a Markdown table, and the latency distributions plotted.

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use super::measure::{Latencies, Run};

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn latency_cell(l: &Latencies) -> String {
    if l.is_empty() {
        return String::new();
    }
    format!(
        "{:.2} / {:.2} / {:.2} ms",
        ms(l.p50()),
        ms(l.p99()),
        ms(l.max())
    )
}

fn run_cell(run: &Run) -> String {
    let mut cell = latency_cell(&run.latencies);
    if !run.wall.is_zero() {
        cell.push_str(&format!(", {:.0}/s", run.throughput()));
    }
    cell
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// A figure reported without a goal.
    Info,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub workload: String,
    pub rkube: String,
    pub floor: String,
    pub floor_label: Option<String>,
    pub ratio: Option<f64>,
    pub goal: String,
    pub verdict: Verdict,
    p50: Option<Duration>,
}

impl Row {
    /// Latencies on both sides; `ratio` defaults to rkube's p50 over the floor's.
    pub fn latencies(workload: &str, ours: &Run, floor: &Run, ratio: Option<f64>) -> Self {
        let ratio = ratio.or_else(|| {
            (!floor.latencies.is_empty())
                .then(|| ms(ours.latencies.p50()) / ms(floor.latencies.p50()).max(1e-6))
        });
        Self {
            workload: workload.to_string(),
            rkube: run_cell(ours),
            floor: run_cell(floor),
            floor_label: None,
            ratio,
            goal: String::new(),
            verdict: Verdict::Info,
            p50: Some(ours.latencies.p50()),
        }
    }

    /// Plain figures on both sides.
    pub fn figures(workload: &str, ours: String, floor: String, ratio: Option<f64>) -> Self {
        Self {
            workload: workload.to_string(),
            rkube: ours,
            floor,
            floor_label: None,
            ratio,
            goal: String::new(),
            verdict: Verdict::Info,
            p50: None,
        }
    }

    pub fn goal(mut self, goal: String, met: bool) -> Self {
        self.goal = goal;
        self.verdict = if met { Verdict::Met } else { Verdict::Missed };
        self
    }

    /// What the floor column holds when it is not the physical floor.
    pub fn floor_label(mut self, label: &str) -> Self {
        self.floor_label = Some(label.to_string());
        self
    }
}

/// Every row of one run and the latency series to plot.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    series: Vec<(String, Latencies)>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        println!("{}", Self::line(&row));
        self.rows.push(row);
    }

    pub fn series(&mut self, name: &str, latencies: &Latencies) {
        if !latencies.is_empty() {
            self.series.push((name.to_string(), latencies.clone()));
        }
    }

    pub fn p50_of(&self, workload: &str) -> Option<Duration> {
        self.rows
            .iter()
            .find(|r| r.workload == workload)
            .and_then(|r| r.p50)
    }

    pub fn missed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Missed)
            .count()
    }

    fn line(row: &Row) -> String {
        let floor = match (&row.floor_label, row.floor.is_empty()) {
            (_, true) => String::new(),
            (Some(label), false) => format!("{} ({label})", row.floor),
            (None, false) => row.floor.clone(),
        };
        let ratio = row.ratio.map_or(String::new(), |r| format!("×{r:.2}"));
        let verdict = match row.verdict {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::Info => "",
        };
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            row.workload, row.rkube, floor, ratio, row.goal, verdict
        )
    }

    /// The table in Markdown, headed by what it ran on.
    pub fn markdown(&self, machine: &str) -> String {
        let mut text = format!("{machine}\n\n");
        text.push_str(
            "| workload | rkube (p50 / p99 / max) | floor, same run | ratio | goal | |\n",
        );
        text.push_str("|---|---|---|---|---|---|\n");
        for row in &self.rows {
            text.push_str(&Self::line(row));
            text.push('\n');
        }
        text
    }

    /// The latency distributions (one line per series, log-scaled time) as a PNG.
    pub fn plot(&self, path: &Path) -> Result<(), String> {
        if self.series.is_empty() {
            return Ok(());
        }
        let font = font()?;
        let root = BitMapBackend::new(path, (1200, 700)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (lo, hi) = self
            .series
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), (_, l)| {
                let first = l.sorted().first().copied().unwrap_or_default();
                (lo.min(ms(first).max(0.01)), hi.max(ms(l.max())))
            });
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "rkube bench: latency distributions (solid: rkube, dashed: floor)",
                (font, 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((lo * 0.8..hi * 1.2).log_scale(), 0f64..100f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("latency (ms, log scale)")
            .y_desc("percentile")
            .label_style((font, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, latencies)) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let sorted = latencies.sorted();
            // At most 500 points a line: the distribution's shape, not every sample.
            let step = (sorted.len() / 500).max(1);
            let points: Vec<(f64, f64)> = sorted
                .iter()
                .enumerate()
                .step_by(step)
                .chain(std::iter::once((
                    sorted.len() - 1,
                    &sorted[sorted.len() - 1],
                )))
                .map(|(j, d)| {
                    (
                        ms(*d).max(lo * 0.8),
                        100.0 * (j + 1) as f64 / sorted.len() as f64,
                    )
                })
                .collect();
            let floor = name.starts_with("etcd") || name.starts_with("docker");
            let style = ShapeStyle::from(color).stroke_width(2);
            let drawn = if floor {
                chart.draw_series(DashedLineSeries::new(points, 6, 4, style))
            } else {
                chart.draw_series(LineSeries::new(points, style))
            };
            drawn
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((font, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The plot's typeface, read once from the system's DejaVu fonts (Debian's
/// `fonts-dejavu-core`, which the project's setup installs).
fn font() -> Result<&'static str, String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    const PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(PATH)
                .map_err(|e| format!("cannot read {PATH} ({e}): install fonts-dejavu-core"))?;
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes.leak())
                .map_err(|_| format!("{PATH} is not a usable font"))
        })
        .clone()
        .map(|()| "sans-serif")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_their_verdict_and_ratio() {
        let ours = Run {
            latencies: Latencies::new(vec![Duration::from_millis(2); 10]),
            wall: Duration::from_secs(1),
        };
        let floor = Run {
            latencies: Latencies::new(vec![Duration::from_millis(1); 10]),
            wall: Duration::from_secs(1),
        };
        let mut report = Report::default();
        report.push(Row::latencies("x", &ours, &floor, None).goal("g".into(), false));
        let table = report.markdown("machine");
        assert!(
            table.contains("| x | 2.00 / 2.00 / 2.00 ms, 10/s | 1.00 / 1.00 / 1.00 ms, 10/s | ×2.00 | g | **missed** |"),
            "{table}"
        );
        assert_eq!(report.missed(), 1);
        assert_eq!(report.p50_of("x"), Some(Duration::from_millis(2)));
    }

    #[test]
    fn the_plot_is_a_png() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut report = Report::default();
        report.series(
            "create ×1",
            &Latencies::new((1..100).map(Duration::from_micros).collect()),
        );
        report.series(
            "etcd put ×1",
            &Latencies::new((1..100).map(|i| Duration::from_micros(i / 2 + 1)).collect()),
        );
        let path = dir.path().join("p.png");
        report.plot(&path).expect("plots");
        let bytes = std::fs::read(&path).expect("written");
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
