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

    /// The names (`<workout id>.<format>`) of the user's originals: listed without their bytes,
    /// so a caller walking a long history holds one file at a time ([`Originals::get_named`]).
    pub async fn names_of_user(&self, user: &str) -> Result<Vec<String>, SinkError> {
        let listed: Vec<_> =
            self.location.store.list(Some(&self.user_dir(user))).try_collect().await.map_err(SinkError::store)?;
        Ok(listed.into_iter().filter_map(|meta| meta.location.filename().map(str::to_owned)).collect())
    }

    /// One original by its name in [`Originals::names_of_user`].
    pub async fn get_named(&self, user: &str, name: &str) -> Result<Bytes, SinkError> {
        let path = self.user_dir(user).join(PathPart::from(name));
        let found = self.location.store.get(&path).await.map_err(SinkError::store)?;
        found.bytes().await.map_err(SinkError::store)
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
