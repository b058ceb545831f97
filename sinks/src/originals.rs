//! The files users uploaded, kept byte for byte beside the lake (`<lake root>/originals/<user>/
//! <workout id>.<format>`), so a user can download what their device recorded and take it with
//! them. Kept per workout (a multisport file under each of its workouts), erased with the user or
//! the workout.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use trackwire_codec::WorkoutId;

use crate::SinkError;
use crate::lake::LakeLocation;

/// An uploaded file as it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Original {
    /// `gpx`, `tcx` or `fit`.
    pub format: String,
    pub bytes: Bytes,
}

/// The uploaded files, in the lake's object store.
#[derive(Debug, Clone)]
pub struct Originals {
    location: LakeLocation,
    root: Path,
}

impl Originals {
    pub fn new(location: LakeLocation) -> Result<Self, SinkError> {
        let root = location.object(&location.root)?.join("originals");
        Ok(Originals { location, root })
    }

    fn user_dir(&self, user: &str) -> Path {
        // A user id may hold any character: as one path part it is percent-encoded.
        self.root.clone().join(PathPart::from(user))
    }

    /// Keeps `bytes` as the original of `workout` (replacing an earlier one).
    pub async fn put(&self, user: &str, workout: &WorkoutId, format: &str, bytes: Bytes) -> Result<(), SinkError> {
        let path = self.user_dir(user).join(format!("{workout}.{format}"));
        self.location.store.put(&path, PutPayload::from(bytes)).await.map_err(SinkError::store)?;
        Ok(())
    }

    /// The original of `workout`, if one was uploaded.
    pub async fn get(&self, user: &str, workout: &WorkoutId) -> Result<Option<Original>, SinkError> {
        let prefix = format!("{workout}.");
        let listed: Vec<_> =
            self.location.store.list(Some(&self.user_dir(user))).try_collect().await.map_err(SinkError::store)?;
        let Some(meta) = listed.into_iter().find(|m| m.location.filename().is_some_and(|f| f.starts_with(&prefix)))
        else {
            return Ok(None);
        };
        let format = meta.location.extension().unwrap_or_default().to_owned();
        let bytes = self.location.store.get(&meta.location).await.map_err(SinkError::store)?.bytes().await;
        Ok(Some(Original { format, bytes: bytes.map_err(SinkError::store)? }))
    }

    /// Every original of the user, by workout.
    pub async fn all_of_user(&self, user: &str) -> Result<Vec<(String, Original)>, SinkError> {
        let listed: Vec<_> =
            self.location.store.list(Some(&self.user_dir(user))).try_collect().await.map_err(SinkError::store)?;
        let mut out = Vec::with_capacity(listed.len());
        for meta in listed {
            let name = meta.location.filename().unwrap_or_default().to_owned();
            let format = meta.location.extension().unwrap_or_default().to_owned();
            let bytes = self.location.store.get(&meta.location).await.map_err(SinkError::store)?.bytes().await;
            out.push((name, Original { format, bytes: bytes.map_err(SinkError::store)? }));
        }
        Ok(out)
    }

    /// Deletes the original of `workout`, if one was kept (a multisport file's copies under its
    /// other workouts stay).
    pub async fn erase_workout(&self, user: &str, workout: &WorkoutId) -> Result<(), SinkError> {
        let prefix = format!("{workout}.");
        let listed: Vec<_> =
            self.location.store.list(Some(&self.user_dir(user))).try_collect().await.map_err(SinkError::store)?;
        for meta in listed.iter().filter(|m| m.location.filename().is_some_and(|f| f.starts_with(&prefix))) {
            self.location.store.delete(&meta.location).await.map_err(SinkError::store)?;
        }
        Ok(())
    }

    /// Deletes every original of the user; returns how many there were.
    pub async fn erase_user(&self, user: &str) -> Result<usize, SinkError> {
        let listed: Vec<_> =
            self.location.store.list(Some(&self.user_dir(user))).try_collect().await.map_err(SinkError::store)?;
        for meta in &listed {
            self.location.store.delete(&meta.location).await.map_err(SinkError::store)?;
        }
        Ok(listed.len())
    }
}
