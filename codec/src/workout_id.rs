use std::fmt;
use std::str::FromStr;

/// A workout's 128-bit identifier: the shard key, the Kafka key and half of the dedup key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct WorkoutId(pub [u8; 16]);

impl WorkoutId {
    /// A stable 64-bit hash for sharding (FNV-1a: cheap, and the id is already random).
    pub fn shard_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.0 {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    }
}

impl WorkoutId {
    /// The hyphenated lowercase UUID text, without allocating.
    pub fn encode<'b>(&self, buf: &'b mut [u8; 36]) -> &'b str {
        uuid::Uuid::from_bytes(self.0).hyphenated().encode_lower(buf)
    }
}

impl fmt::Display for WorkoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&uuid::Uuid::from_bytes(self.0).hyphenated(), f)
    }
}

impl fmt::Debug for WorkoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkoutId({self})")
    }
}

/// The text was not a UUID (`8-4-4-4-12` hex digits).
#[derive(Debug, thiserror::Error)]
#[error("'{input}' is not a workout id: expected a UUID such as 67e55044-10b1-426f-9247-bb680e5fe0c8")]
pub struct ParseWorkoutIdError {
    pub input: String,
}

impl FromStr for WorkoutId {
    type Err = ParseWorkoutIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(|u| WorkoutId(*u.as_bytes()))
            .map_err(|_| ParseWorkoutIdError { input: s.chars().take(64).collect() })
    }
}

impl serde::Serialize for WorkoutId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for WorkoutId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// In the OpenAPI document a workout id is what it is on the JSON side: a UUID string.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for WorkoutId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom("uuid".into())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for WorkoutId {}
