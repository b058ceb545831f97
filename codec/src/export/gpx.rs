use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{Recording, degrees, instant, metres};

const NAMESPACE: &str = "http://www.topografix.com/GPX/1/1";
const TRACK_POINT_EXTENSION: &str = "http://www.garmin.com/xmlschemas/TrackPointExtension/v1";

/// The recording as GPX 1.1: one track, a segment per stretch between pauses, every point that has a position
/// (GPX has no place for the others), its time, elevation, and heart rate and cadence in Garmin's
/// TrackPointExtension.
pub fn gpx(recording: &Recording<'_>) -> Vec<u8> {
    write(recording).expect("writing XML into memory cannot fail")
}

fn write(recording: &Recording<'_>) -> io::Result<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 1);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer
        .create_element("gpx")
        .with_attributes([
            ("version", "1.1"),
            ("creator", "Trackwire"),
            ("xmlns", NAMESPACE),
            ("xmlns:gpxtpx", TRACK_POINT_EXTENSION),
        ])
        .write_inner_content(|w| {
            if let Some(start) = recording.fixes.iter().find_map(|f| f.time_ms) {
                w.create_element("metadata").write_inner_content(|w| {
                    w.create_element("time").write_text_content(BytesText::new(&instant(start)))?;
                    Ok(())
                })?;
            }
            w.create_element("trk").write_inner_content(|w| {
                w.create_element("name").write_text_content(BytesText::new(recording.name))?;
                w.create_element("type").write_text_content(BytesText::new(crate::sport_name(recording.sport)))?;
                for stretch in recording.stretches() {
                    w.create_element("trkseg").write_inner_content(|w| {
                        for fix in &recording.fixes[stretch] {
                            let (Some(lat), Some(lon)) = (fix.lat, fix.lon) else { continue };
                            w.create_element("trkpt")
                                .with_attributes([("lat", degrees(lat).as_str()), ("lon", degrees(lon).as_str())])
                                .write_inner_content(|w| {
                                    if let Some(altitude) = fix.altitude_m {
                                        w.create_element("ele")
                                            .write_text_content(BytesText::new(&metres(altitude)))?;
                                    }
                                    if let Some(t) = fix.time_ms {
                                        w.create_element("time").write_text_content(BytesText::new(&instant(t)))?;
                                    }
                                    if fix.heart_rate.is_some() || fix.cadence.is_some() {
                                        w.create_element("extensions").write_inner_content(|w| {
                                            w.create_element("gpxtpx:TrackPointExtension").write_inner_content(
                                                |w| {
                                                    if let Some(hr) = fix.heart_rate {
                                                        w.create_element("gpxtpx:hr")
                                                            .write_text_content(BytesText::new(&hr.to_string()))?;
                                                    }
                                                    if let Some(cadence) = fix.cadence {
                                                        w.create_element("gpxtpx:cad")
                                                            .write_text_content(BytesText::new(&cadence.to_string()))?;
                                                    }
                                                    Ok(())
                                                },
                                            )?;
                                            Ok(())
                                        })?;
                                    }
                                    Ok(())
                                })?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(writer.into_inner())
}
