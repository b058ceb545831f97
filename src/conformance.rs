//! `trackwire conformance DIR`: every recorded trace through the importer and the pipeline,
//! compared with the values the device wrote into the file (DEV) and those the source projects'
//! own tests assert (PUB), as listed in `../shared/traces/SOURCES.md`.

use std::fmt::Write;
use std::path::Path;

use trackwire_codec::WorkoutId;
use trackwire_codec::import::{AthleteProfile, Imported, import_bytes};

/// A published reference value: `(file, metric, value, where it is asserted)`.
/// From ../shared/traces/SOURCES.md ("PUB"); times converted to seconds.
const PUBLISHED: &[(&str, &str, f64, &str)] = &[
    ("sportslib__runs_2067489619.fit", "moving_s", 2742.0, "sports-lib spec L493-535"),
    ("sportslib__runs_2067489619.gpx", "distance_m", 4400.0, "sports-lib spec L1111-1154"),
    ("sportslib__runs_2067489619.gpx", "moving_s", 2688.0, "sports-lib spec L1111-1154"),
    ("sportslib__runs_2067489619.gpx", "ascent_m", 35.0, "sports-lib spec L1111-1154"),
    ("sportslib__rides_3939576645.fit", "moving_s", 7242.0, "sports-lib spec L1374-1432"),
    ("sportslib__rides_3939576645.fit", "ascent_m", 668.0, "sports-lib spec L1374-1432"),
    ("sportslib__rides_3939576645.gpx", "distance_m", 41829.0, "sports-lib spec L1880-1915"),
    ("sportslib__rides_3939576645.gpx", "moving_s", 7242.0, "sports-lib spec L1880-1915"),
    ("sportslib__rides_3939576645.gpx", "ascent_m", 672.0, "sports-lib spec L1880-1915"),
    ("sportslib__rides_6791039036.tcx", "moving_s", 7319.0, "sports-lib spec L1718-1757"),
    ("sportslib__rides_6791039036.tcx", "ascent_m", 672.0, "sports-lib spec L1718-1757"),
    ("fittrackee__example.fit", "distance_m", 318.0, "FitTrackee test L803-846"),
    ("fittrackee__gpx_file_fixture.gpx", "distance_m", 320.0, "FitTrackee test L38-112"),
];

/// One comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub file: String,
    pub metric: &'static str,
    pub ours: f64,
    pub reference: f64,
    /// "DEV" or the PUB citation.
    pub source: String,
}

impl Row {
    /// Signed difference in percent of the reference.
    pub fn diff_pct(&self) -> f64 {
        if self.reference == 0.0 { 0.0 } else { (self.ours - self.reference) / self.reference * 100.0 }
    }
}

/// Compares every GPX/TCX/FIT file in `dir`, in file-name order.
pub fn compare_dir(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("gpx" | "tcx" | "fit")))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let imported = import_bytes(&std::fs::read(&path)?).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let batches = imported.to_batches(WorkoutId::default(), "conformance", "conformance", 1000);
        let Some(s) = crate::offline_summary(&batches, imported.profile.as_ref()) else { continue };
        let ours = |metric: &str| -> Option<f64> {
            match metric {
                "distance_m" => Some(s.distance_m),
                "timer_s" => Some(s.timer_s),
                "elapsed_s" => Some(s.elapsed_s),
                "moving_s" => Some(s.moving_time_s),
                "ascent_m" => s.elevation_gain_m,
                "descent_m" => s.elevation_loss_m,
                "hr_avg" => s.heart_rate_avg_bpm,
                "hr_max" => s.heart_rate_max_bpm.map(f64::from),
                "calories_kcal" => s.calories_kcal,
                _ => None,
            }
        };
        let d = &imported.device;
        let device = [
            ("distance_m", d.distance_m),
            ("timer_s", d.timer_s),
            ("elapsed_s", d.elapsed_s),
            ("ascent_m", d.ascent_m),
            ("descent_m", d.descent_m),
            ("hr_avg", d.heart_rate_avg),
            ("hr_max", d.heart_rate_max),
            ("calories_kcal", d.calories_kcal),
        ];
        for (metric, reference) in device {
            if let (Some(reference), Some(value)) = (reference, ours(metric)) {
                rows.push(Row { file: name.clone(), metric, ours: value, reference, source: "DEV".into() });
            }
        }
        if let Some(reference) = d.calories_kcal {
            for (metric, value) in calories_by_method(&imported) {
                rows.push(Row { file: name.clone(), metric, ours: value, reference, source: "DEV".into() });
            }
        }
        for (file, metric, reference, cite) in PUBLISHED {
            if *file == name
                && let Some(value) = ours(metric)
            {
                rows.push(Row {
                    file: name.clone(),
                    metric,
                    ours: value,
                    reference: *reference,
                    source: format!("PUB ({cite})"),
                });
            }
        }
    }
    Ok(rows)
}

/// The athlete assumed where a file carries no profile: ICRP's reference adult man (73 kg,
/// 1.76 m; ICRP Publication 89, 2002), aged 35. The device knew its owner, so these rows show how
/// the methods spread, not which is right.
fn reference_athlete() -> AthleteProfile {
    AthleteProfile {
        weight_kg: Some(73.0),
        age_years: Some(35.0),
        male: Some(true),
        height_m: Some(1.76),
        ..Default::default()
    }
}

/// The calories of `imported` by every method its data and profile allow, each as the metric
/// `calories_<method>`: as recorded (heart rate, with VO2max when the profile has a resting
/// heart rate), with heart rate but without VO2max, and without heart rate (speed or MET), so
/// each method's error against the device shows, not only the one the pipeline picks. A file
/// without the athlete's weight is compared with [`reference_athlete`], as
/// `calories_<method>_assumed_athlete`.
fn calories_by_method(imported: &Imported) -> Vec<(&'static str, f64)> {
    let summary = |imported: &Imported| {
        let batches = imported.to_batches(WorkoutId::default(), "conformance", "conformance", 1000);
        crate::offline_summary(&batches, imported.profile.as_ref())
    };
    let assumed = imported.profile.as_ref().is_none_or(|p| p.weight_kg.is_none());
    let mut as_recorded = imported.clone();
    if assumed {
        as_recorded.profile = Some(reference_athlete());
    }
    let without_vo2max = {
        let mut variant = as_recorded.clone();
        if let Some(profile) = variant.profile.as_mut() {
            profile.hr_rest = None;
        }
        variant
    };
    let without_heart_rate = {
        let mut variant = as_recorded.clone();
        variant.fixes.iter_mut().for_each(|fix| fix.heart_rate = None);
        variant
    };
    let mut out: Vec<(&'static str, f64)> = Vec::new();
    for variant in [&as_recorded, &without_vo2max, &without_heart_rate] {
        let Some(s) = summary(variant) else { continue };
        let metric = match (s.calories_method.as_deref(), assumed) {
            (Some("keytel2005_vo2max"), false) => "calories_keytel2005_vo2max",
            (Some("keytel2005"), false) => "calories_keytel2005",
            (Some("acsm"), false) => "calories_acsm",
            (Some("met2011"), false) => "calories_met2011",
            (Some("keytel2005"), true) => "calories_keytel2005_assumed_athlete",
            (Some("acsm"), true) => "calories_acsm_assumed_athlete",
            (Some("met2011"), true) => "calories_met2011_assumed_athlete",
            _ => continue,
        };
        if let Some(kcal) = s.calories_kcal.filter(|_| !out.iter().any(|(m, _)| *m == metric)) {
            out.push((metric, kcal));
        }
    }
    out
}

/// The Markdown report committed as `docs/conformance.md`: a summary per metric (how far the
/// typical and the worst file are from their reference), then a table per file.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "# Conformance against recorded traces\n\n\
         Generated by `trackwire conformance ../shared/traces` (checked by `tests/conformance.rs`, which\n\
         fails when this file is stale). DEV = the device's own totals in the file; PUB = a value the\n\
         source project's tests assert (see `../shared/traces/SOURCES.md`). Difference = (ours − reference)\n\
         / reference. `calories_kcal` is the method the pipeline picks for the file;\n\
         `calories_<method>` each method its data allows (with heart rate: Keytel 2005, with VO2max\n\
         from the profile's resting and maximum heart rate where it has them; without: ACSM from speed\n\
         for running and walking, else the Compendium MET), against the same device figure. Where the\n\
         file carries no profile, `calories_<method>_assumed_athlete` assumes ICRP's reference man\n\
         (73 kg, 35 years): those show how the methods spread, not which is right.\n\n\
         ## Summary per metric\n\n\
         Over every comparison of the metric (a file with a DEV and a PUB value counts twice); |Δ| is the\n\
         absolute difference.\n\n\
         | metric | comparisons | median \\|Δ\\| | worst \\|Δ\\| | worst: file, reference |\n| --- | ---: | ---: | ---: | --- |\n",
    );
    let mut metrics: Vec<&str> = Vec::new();
    for row in rows {
        if !metrics.contains(&row.metric) {
            metrics.push(row.metric);
        }
    }
    for metric in metrics {
        let mut of_metric: Vec<&Row> = rows.iter().filter(|r| r.metric == metric).collect();
        of_metric.sort_by(|a, b| a.diff_pct().abs().total_cmp(&b.diff_pct().abs()));
        let n = of_metric.len();
        let median = if n % 2 == 1 {
            of_metric[n / 2].diff_pct().abs()
        } else {
            (of_metric[n / 2 - 1].diff_pct().abs() + of_metric[n / 2].diff_pct().abs()) / 2.0
        };
        let worst = of_metric[n - 1];
        let _ = writeln!(
            out,
            "| {metric} | {n} | {median:.2} % | {:.2} % | {}, {} |",
            worst.diff_pct().abs(),
            worst.file,
            worst.source
        );
    }
    out.push_str("\n## Per file\n");
    let mut file = None;
    for row in rows {
        if file != Some(&row.file) {
            file = Some(&row.file);
            let _ = write!(
                out,
                "\n### {}\n\n| metric | ours | reference | source | difference |\n| --- | ---: | ---: | --- | ---: |\n",
                row.file
            );
        }
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {} | {:+.2} % |",
            row.metric,
            row.ours,
            row.reference,
            row.source,
            row.diff_pct()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(file: &str, metric: &'static str, ours: f64) -> Row {
        Row { file: file.into(), metric, ours, reference: 100.0, source: "DEV".into() }
    }

    #[test]
    fn the_summary_gives_each_metrics_median_and_worst_absolute_difference() {
        let rows = [
            row("a.fit", "distance_m", 101.0),
            row("a.fit", "ascent_m", 75.0),
            row("b.fit", "distance_m", 97.0),
            row("c.gpx", "distance_m", 102.0),
            row("d.tcx", "distance_m", 104.0),
        ];
        let report = markdown(&rows);
        // |Δ| of distance: 1, 3, 2, 4 → median 2.5, worst 4 (d.tcx); ascent: one comparison.
        assert!(report.contains("| distance_m | 4 | 2.50 % | 4.00 % | d.tcx, DEV |"), "{report}");
        assert!(report.contains("| ascent_m | 1 | 25.00 % | 25.00 % | a.fit, DEV |"), "{report}");
        // One table per file, in the rows' order, each with its own rows.
        let a = report.find("### a.fit").unwrap();
        let b = report.find("### b.fit").unwrap();
        assert!(a < b && report[a..b].contains("| ascent_m | 75.0 | 100.0 | DEV | -25.00 % |"));
        assert_eq!(report.matches("### ").count(), 4);
    }
}
