//! Gzipped uploads, expanded without trusting them. A gzip bomb (a megabyte that inflates to a
//! gigabyte) costs neither memory nor much time: the contents are sniffed from their first
//! kilobytes, the whole stream is first inflated into a small scratch buffer only to be measured
//! against what a real file of that kind expands to, and only a file within that bound is
//! inflated again into a buffer of exactly its size.

use std::io::Read;

use super::{Format, ImportError, sniff};

/// How far a real recording of each kind expands when gzipped, with headroom. Measured with
/// `gzip -9` on the shared third-party traces: FIT files 1.3–2.3× (binary, already dense), GPX
/// 5–13×, TCX 13–19× (the most repetitive markup).
const FIT_EXPANSION: usize = 8;
const XML_EXPANSION: usize = 40;
/// Wire batches: 24-byte samples whose timestamps and coordinates change every sample.
const BATCHES_EXPANSION: usize = 16;
/// A small file may compress unusually well (a header dominates it): up to this size is allowed
/// whatever the ratio.
const SMALL_FILE_BYTES: usize = 1 << 20;
/// Enough of the start to tell GPX, TCX and FIT apart ([`sniff`] reads 4 KiB).
const SNIFF_BYTES: usize = 4096;
/// The scratch buffer the measuring pass inflates into.
const SCRATCH_BYTES: usize = 64 << 10;

/// What a gzipped upload holds: a GPX, TCX or FIT file (told from its contents), or wire batches
/// (which have no signature to tell them by, so the caller says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packed {
    File,
    Batches,
}

/// Inflates `compressed` (gzip, possibly several members) when it expands to no more than
/// `max_bytes` and no more than a real file of its kind would; the expanded bytes otherwise.
pub fn gunzip(compressed: &[u8], packed: Packed, max_bytes: usize) -> Result<Vec<u8>, ImportError> {
    let bad = |e: std::io::Error| ImportError::BadGzip { detail: e.to_string() };
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut decoder).take(SNIFF_BYTES as u64).read_to_end(&mut head).map_err(bad)?;
    let (kind, expansion) = match packed {
        Packed::Batches => ("batches", BATCHES_EXPANSION),
        Packed::File => match sniff(&head) {
            Some(Format::Fit) => ("FIT", FIT_EXPANSION),
            Some(Format::Gpx) => ("GPX", XML_EXPANSION),
            Some(Format::Tcx) => ("TCX", XML_EXPANSION),
            None => {
                let start = String::from_utf8_lossy(&head[..head.len().min(16)]).into_owned();
                return Err(ImportError::UnknownFormat { start });
            }
        },
    };
    let limit = compressed.len().saturating_mul(expansion).max(SMALL_FILE_BYTES).min(max_bytes);
    let mut size = head.len();
    let mut scratch = vec![0u8; SCRATCH_BYTES];
    loop {
        let read = decoder.read(&mut scratch).map_err(bad)?;
        if read == 0 {
            break;
        }
        size += read;
        if size > limit {
            return Err(ImportError::ExpandsTooFar { kind, limit });
        }
    }
    let mut expanded = Vec::with_capacity(size);
    flate2::read::MultiGzDecoder::new(compressed).take(size as u64).read_to_end(&mut expanded).map_err(bad)?;
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn gpx_bomb(points: usize) -> Vec<u8> {
        let mut gpx = b"<?xml version=\"1.0\"?><gpx version=\"1.1\"><trk><trkseg>".to_vec();
        for _ in 0..points {
            gpx.extend_from_slice(b"<trkpt lat=\"1\" lon=\"1\"/>");
        }
        gpx.extend_from_slice(b"</trkseg></trk></gpx>");
        gpx
    }

    #[test]
    fn a_file_expanding_further_than_its_kind_is_refused_without_being_kept() {
        let plain = gpx_bomb(200_000); // 4.8 MB of identical points: ~500× smaller gzipped
        let bomb = gzip(&plain);
        let err = gunzip(&bomb, Packed::File, 64 << 20).unwrap_err();
        assert!(matches!(err, ImportError::ExpandsTooFar { kind: "GPX", limit } if limit == SMALL_FILE_BYTES), "{err}");
        assert!(err.to_string().contains("more than a real GPX file"), "{err}");
    }

    #[test]
    fn the_absolute_limit_holds_whatever_the_ratio() {
        let plain = gpx_bomb(3_000);
        let err = gunzip(&gzip(&plain), Packed::File, 10_000).unwrap_err();
        assert!(matches!(err, ImportError::ExpandsTooFar { limit: 10_000, .. }), "{err}");
        assert_eq!(gunzip(&gzip(&plain), Packed::File, plain.len()).unwrap(), plain);
    }

    #[test]
    fn real_files_and_several_members_expand_whole() {
        let gpx = gpx_bomb(100);
        let mut two_members = gzip(&gpx[..500]);
        two_members.extend(gzip(&gpx[500..]));
        assert_eq!(gunzip(&two_members, Packed::File, 1 << 20).unwrap(), gpx);
    }

    #[test]
    fn zeros_are_not_a_file_and_garbage_is_not_gzip() {
        let zeros = gzip(&vec![0u8; 8 << 20]);
        assert!(matches!(gunzip(&zeros, Packed::File, 64 << 20), Err(ImportError::UnknownFormat { .. })));
        assert!(matches!(
            gunzip(&zeros, Packed::Batches, 64 << 20),
            Err(ImportError::ExpandsTooFar { kind: "batches", .. })
        ));
        let err = gunzip(b"\x1f\x8bnot really gzip", Packed::File, 1 << 20).unwrap_err();
        assert!(matches!(err, ImportError::BadGzip { .. }), "{err}");
    }
}
