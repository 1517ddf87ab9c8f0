//! Uploaded files, told and summarised from their bytes: what type they really are (never from
//! the name), whether that agrees with the Content-Type the client declared, and what can be
//! derived from them (image dimensions and a thumbnail, the text of a PDF, a DOCX or a text
//! file), within [`Limits`] that refuse decompression bombs and oversized images before they
//! cost memory.
//!
//! Everything is pure and synchronous: the `files` Lambda reads the object from S3 and hands
//! the bytes over. [`process`] never panics out: a parser panic becomes a [`Failure`].

#![warn(missing_docs)]

mod digest;
mod docx;
mod limits;
mod pdf;
mod picture;
mod process;
#[cfg(feature = "samples")]
pub mod samples;
mod sniff;
mod text;
pub mod zipwrite;

pub use digest::sha256_hex;
pub use limits::Limits;
pub use pdf::PAGE_BREAK;
pub use process::{Extract, Failure, FailureKind, Picture, Processed, THUMBNAIL_CONTENT_TYPE, THUMBNAIL_MAX_SIDE, Thumbnail, process};
pub use sniff::{Sniffed, matches_declared, sniff};
