/// Totals the recording device wrote into a file (FIT session, TCX laps), kept beside the
/// server's own figures. Travels on the wire as the optional `Batch.device_totals` table.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceTotals {
    pub distance_m: Option<f64>,
    pub timer_s: Option<f64>,
    pub elapsed_s: Option<f64>,
    pub ascent_m: Option<f64>,
    pub descent_m: Option<f64>,
    pub calories_kcal: Option<f64>,
    pub heart_rate_avg: Option<f64>,
    pub heart_rate_max: Option<f64>,
    pub max_speed_mps: Option<f64>,
}

impl DeviceTotals {
    pub fn is_empty(&self) -> bool {
        *self == DeviceTotals::default()
    }
}
