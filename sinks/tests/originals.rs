//! Uploaded files kept beside the lake: stored per workout, read back byte for byte, one user's
//! erased without touching another's, user ids with any characters kept apart.
use bytes::Bytes;
use trackwire_codec::WorkoutId;
use trackwire_sinks::lake::{S3Options, open_store};
use trackwire_sinks::originals::Originals;

#[tokio::test]
async fn originals_are_kept_per_workout_and_erased_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let location = open_store(&dir.path().join("lake").display().to_string(), &S3Options::default()).unwrap();
    let originals = Originals::new(location).unwrap();
    let (a, b) = (WorkoutId([1; 16]), WorkoutId([2; 16]));
    originals.put("ada", &a, "fit", Bytes::from_static(b"\x0e\x20fit bytes")).await.unwrap();
    originals.put("ada", &b, "gpx", Bytes::from_static(b"<gpx/>")).await.unwrap();
    originals.put("ada/../bob", &a, "tcx", Bytes::from_static(b"<tcx/>")).await.unwrap();
    originals.put("bob", &a, "gpx", Bytes::from_static(b"<gpx>bob</gpx>")).await.unwrap();

    let fit = originals.get("ada", &a).await.unwrap().expect("ada's FIT");
    assert_eq!((fit.format.as_str(), &fit.bytes[..]), ("fit", &b"\x0e\x20fit bytes"[..]));
    assert_eq!(originals.get("ada", &WorkoutId([3; 16])).await.unwrap(), None);
    let mut names = originals.names_of_user("ada").await.unwrap();
    names.sort();
    assert_eq!(names, [format!("{a}.fit"), format!("{b}.gpx")]);
    assert_eq!(originals.get_named("ada", &names[1]).await.unwrap(), Bytes::from_static(b"<gpx/>"));
    assert_eq!(originals.get("ada/../bob", &a).await.unwrap().unwrap().format, "tcx", "a user id is one path part");

    assert_eq!(originals.erase_user("ada").await.unwrap(), 2);
    assert_eq!(originals.get("ada", &a).await.unwrap(), None);
    assert_eq!(originals.get("bob", &a).await.unwrap().unwrap().bytes, Bytes::from_static(b"<gpx>bob</gpx>"));
    assert_eq!(originals.get("ada/../bob", &a).await.unwrap().unwrap().format, "tcx");
}
