//! Request body decompression with a hard cap on the decompressed size (zip-bomb safe).

use std::io::Read;

use crate::IngestError;

/// The `Content-Encoding` values we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Zstd,
    Gzip,
}

impl ContentEncoding {
    pub fn parse(header: Option<&str>) -> Result<Self, IngestError> {
        match header.map(|h| h.trim().to_ascii_lowercase()) {
            None => Ok(ContentEncoding::Identity),
            Some(h) if h.is_empty() || h == "identity" => Ok(ContentEncoding::Identity),
            Some(h) if h == "zstd" => Ok(ContentEncoding::Zstd),
            Some(h) if h == "gzip" || h == "x-gzip" => Ok(ContentEncoding::Gzip),
            Some(other) => Err(IngestError::UnsupportedEncoding { encoding: other }),
        }
    }
}

/// Decompresses `body`, failing as soon as the output would exceed `cap` bytes.
pub fn decompress_capped(body: &[u8], encoding: ContentEncoding, cap: usize) -> Result<Option<Vec<u8>>, IngestError> {
    let reader: Box<dyn Read + '_> = match encoding {
        ContentEncoding::Identity => return Ok(None),
        ContentEncoding::Zstd => Box::new(
            zstd::stream::read::Decoder::new(body)
                .map_err(|e| IngestError::BadCompression { encoding: "zstd", detail: e.to_string() })?,
        ),
        ContentEncoding::Gzip => Box::new(flate2::read::GzDecoder::new(body)),
    };
    let name = if encoding == ContentEncoding::Zstd { "zstd" } else { "gzip" };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(cap));
    // Read one byte past the cap: if it arrives, the body is too large once decompressed.
    let read = reader
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadCompression { encoding: name, detail: e.to_string() })?;
    if read > cap {
        return Err(IngestError::DecompressedTooLarge { limit: cap });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_bomb_is_stopped_at_the_cap() {
        let zeros = vec![0u8; 50 << 20];
        let bomb = zstd::encode_all(&zeros[..], 19).unwrap();
        assert!(bomb.len() < 64 * 1024);
        let err = decompress_capped(&bomb, ContentEncoding::Zstd, 1 << 20).unwrap_err();
        assert!(matches!(err, IngestError::DecompressedTooLarge { limit } if limit == 1 << 20));
    }

    #[test]
    fn gzip_round_trips_and_garbage_is_named() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decompress_capped(&gz, ContentEncoding::Gzip, 10).unwrap().unwrap(), b"hello");
        assert!(matches!(
            decompress_capped(b"nope", ContentEncoding::Zstd, 10),
            Err(IngestError::BadCompression { .. })
        ));
        assert!(matches!(ContentEncoding::parse(Some("br")), Err(IngestError::UnsupportedEncoding { .. })));
    }
}
