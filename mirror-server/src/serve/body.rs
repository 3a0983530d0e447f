//! The response body: empty, bytes in memory, or a span of an open file; and a hook that runs
//! when the body is done (sent in full, or dropped because the client went away), which is when
//! the access log line and the metrics are written.
//!
//! File chunks are read on the worker thread with `pread`. A mirror's hot set sits in the page
//! cache, where a read costs less than handing it to the blocking pool and back (nginx makes
//! the same choice by default). See docs/adr/0010-mirror-serve-http-and-io.md.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Bytes read from a file per body frame.
const FILE_CHUNK_BYTES: u64 = 256 * 1024;

/// Called once with (body bytes sent, whether the whole body was sent).
pub type OnFinish = Box<dyn FnOnce(u64, bool) + Send>;

enum Kind {
    Empty,
    Full(Option<Bytes>),
    File {
        file: File,
        pos: u64,
        remaining: u64,
    },
}

/// See the module docs.
pub struct Body {
    kind: Kind,
    sent: u64,
    on_finish: Option<OnFinish>,
}

impl Body {
    /// No body (HEAD, 304, errors without text).
    pub fn empty() -> Self {
        Body::new(Kind::Empty)
    }

    /// A body held in memory.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Body::empty();
        }
        Body::new(Kind::Full(Some(bytes)))
    }

    /// `len` bytes of `file` from offset `start`.
    pub fn file(file: File, start: u64, len: u64) -> Self {
        if len == 0 {
            return Body::empty();
        }
        Body::new(Kind::File {
            file,
            pos: start,
            remaining: len,
        })
    }

    fn new(kind: Kind) -> Self {
        Body {
            kind,
            sent: 0,
            on_finish: None,
        }
    }

    /// Runs `f` when the body is finished or dropped.
    pub fn on_finish(&mut self, f: OnFinish) {
        self.on_finish = Some(f);
    }

    fn remaining(&self) -> u64 {
        match &self.kind {
            Kind::Empty => 0,
            Kind::Full(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            Kind::File { remaining, .. } => *remaining,
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some(f) = self.on_finish.take() {
            let complete = self.remaining() == 0;
            f(self.sent, complete);
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let chunk = match &mut this.kind {
            Kind::Empty => return Poll::Ready(None),
            Kind::Full(bytes) => match bytes.take() {
                Some(b) => b,
                None => return Poll::Ready(None),
            },
            Kind::File {
                file,
                pos,
                remaining,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = (*remaining).min(FILE_CHUNK_BYTES) as usize;
                let mut buf = vec![0u8; want];
                if let Err(e) = file.read_exact_at(&mut buf, *pos) {
                    // The file shrank under us (it should never be rewritten in place): end the
                    // response abruptly rather than send a short body with a full length.
                    return Poll::Ready(Some(Err(e)));
                }
                *pos += want as u64;
                *remaining -= want as u64;
                Bytes::from(buf)
            }
        };
        this.sent += chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn drain(mut body: Body) -> Vec<u8> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.extend_from_slice(frame.unwrap().data_ref().unwrap());
        }
        out
    }

    #[test]
    fn file_spans_are_read_exactly() {
        let mut tmp = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        std::io::Write::write_all(&mut tmp, &data).unwrap();
        let body = Body::file(tmp.try_clone().unwrap(), 1000, 600_000);
        assert_eq!(body.size_hint().exact(), Some(600_000));
        assert_eq!(drain(body), &data[1000..601_000]);
    }

    #[test]
    fn on_finish_reports_bytes_and_completion() {
        let seen = Arc::new(AtomicU64::new(u64::MAX));
        let s = seen.clone();
        let mut body = Body::full("hello");
        body.on_finish(Box::new(move |n, complete| {
            s.store(if complete { n } else { 1000 + n }, Ordering::SeqCst)
        }));
        assert_eq!(drain(body), b"hello");
        assert_eq!(seen.load(Ordering::SeqCst), 5);

        let s = seen.clone();
        let mut body = Body::full("hello");
        body.on_finish(Box::new(move |n, complete| {
            s.store(if complete { n } else { 1000 + n }, Ordering::SeqCst)
        }));
        drop(body);
        assert_eq!(
            seen.load(Ordering::SeqCst),
            1000,
            "dropped unsent: incomplete, 0 bytes"
        );
    }
}
