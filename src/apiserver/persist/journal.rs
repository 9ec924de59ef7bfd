//! The write-ahead log of `up --state`: every change is appended (under the store's lock, so in
//! resourceVersion order) and written by one thread that fsyncs a whole batch at a time (group
//! commit); a write is answered only once its batch is on disk. The log also reserves
//! resourceVersions ahead (the ceiling), so a restart never hands out a resourceVersion that any
//! client may have seen before a crash.

use crate::apiserver::storage::Change;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// resourceVersions reserved at a time: a restart continues above the last reservation.
pub const CEILING_BLOCK: u64 = 1 << 20;

/// One thing to write, in order.
enum Entry {
    Change(Arc<Change>),
    /// resourceVersions below this may be handed out.
    Ceiling(u64),
    /// Close the current segment (synced) and continue in this one (a snapshot covers the old).
    Rotate(PathBuf),
}

struct Queue {
    entries: Vec<Entry>,
    /// Entries appended so far (a sequence number; the writer syncs up to one).
    appended: u64,
    /// The highest ceiling appended, and the highest one on disk.
    requested_ceiling: u64,
    durable_ceiling: u64,
    stopping: bool,
}

/// The log: appended to by the store, written by its own thread.
pub struct Journal {
    queue: Mutex<Queue>,
    /// Wakes the writer when entries come, and ceiling waiters when a batch is synced.
    work: Condvar,
    synced_cv: Condvar,
    /// Entries on disk so far (what write answers wait for).
    synced: tokio::sync::watch::Sender<u64>,
    /// Bytes in the current segment (compaction starts a new one past a bound).
    segment_bytes: AtomicU64,
    /// The writer thread, joined by [`Journal::stop`].
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Journal {
    /// A journal writing to `segment` (already created and synced), with `ceiling` on disk.
    pub fn start(segment: File, ceiling: u64) -> std::io::Result<Arc<Journal>> {
        let journal = Arc::new(Journal {
            queue: Mutex::new(Queue {
                entries: Vec::new(),
                appended: 0,
                requested_ceiling: ceiling,
                durable_ceiling: ceiling,
                stopping: false,
            }),
            work: Condvar::new(),
            synced_cv: Condvar::new(),
            synced: tokio::sync::watch::channel(0).0,
            segment_bytes: AtomicU64::new(0),
            writer: Mutex::new(None),
        });
        let writer = journal.clone();
        let thread = std::thread::Builder::new()
            .name("state-journal".into())
            .spawn(move || writer.write_loop(segment))?;
        *journal.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(journal)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a change (called under the store's lock, so in resourceVersion order). Reserves
    /// more resourceVersions when half of the reservation is used, and waits (only when the
    /// writer is a whole half-reservation behind) until `change.rv` is reserved on disk.
    pub fn append(&self, change: Arc<Change>) {
        let rv = change.rv;
        let mut q = self.lock();
        q.entries.push(Entry::Change(change));
        q.appended += 1;
        if rv + CEILING_BLOCK / 2 > q.requested_ceiling {
            q.requested_ceiling = rv + CEILING_BLOCK;
            let ceiling = q.requested_ceiling;
            q.entries.push(Entry::Ceiling(ceiling));
            q.appended += 1;
        }
        self.work.notify_one();
        while rv >= q.durable_ceiling && !q.stopping {
            q = self.synced_cv.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Continues the log in `segment` from here on (the caller's snapshot covers what came
    /// before); the reservation so far, which the snapshot must record.
    pub fn rotate(&self, segment: PathBuf) -> u64 {
        let mut q = self.lock();
        q.entries.push(Entry::Rotate(segment));
        q.appended += 1;
        self.work.notify_one();
        q.requested_ceiling
    }

    /// Resolves once everything appended before the call is on disk.
    pub async fn durable(&self) {
        let target = self.lock().appended;
        let mut synced = self.synced.subscribe();
        // The sender lives as long as the journal, which the caller holds.
        let _ = synced.wait_for(|s| *s >= target).await;
    }

    /// Whether anything appended is not on disk yet.
    pub fn is_behind(&self) -> bool {
        self.lock().appended > *self.synced.borrow()
    }

    /// Bytes written to the current segment.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes.load(Ordering::Relaxed)
    }

    /// Writes what is appended, then ends the writer thread and waits for it (the process
    /// is stopping; what is appended later is not written).
    pub fn stop(&self) {
        let mut q = self.lock();
        q.stopping = true;
        self.work.notify_one();
        self.synced_cv.notify_all();
        drop(q);
        let thread = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// The writer: takes everything appended, writes it, syncs once, tells the waiters.
    fn write_loop(self: Arc<Self>, mut segment: File) {
        loop {
            let (batch, upto) = {
                let mut q = self.lock();
                while q.entries.is_empty() && !q.stopping {
                    q = self.work.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.entries.is_empty() {
                    return;
                }
                (std::mem::take(&mut q.entries), q.appended)
            };
            let ceiling = batch
                .iter()
                .filter_map(|e| match e {
                    Entry::Ceiling(c) => Some(*c),
                    _ => None,
                })
                .max();
            segment = self.write_until_done(segment, &batch);
            let mut q = self.lock();
            if let Some(c) = ceiling {
                q.durable_ceiling = q.durable_ceiling.max(c);
            }
            self.synced_cv.notify_all();
            drop(q);
            self.synced.send_replace(upto);
        }
    }

    /// Writes a batch, retrying (after cutting off a partial write) until the disk takes it:
    /// the waiting requests are answered only then. Returns the segment now being written.
    fn write_until_done(&self, mut segment: File, batch: &[Entry]) -> File {
        loop {
            let start = self.segment_bytes.load(Ordering::Relaxed);
            match self.write_batch(&mut segment, batch) {
                Ok(Some(next)) => {
                    segment = next;
                    return segment;
                }
                Ok(None) => return segment,
                Err(e) => {
                    tracing::error!(error = %e, "cannot write the state log; retrying in 1 s (writes wait)");
                    let _ = segment.set_len(start);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Writes and syncs a batch; a rotation inside it syncs the old segment and opens the new.
    fn write_batch(&self, segment: &mut File, batch: &[Entry]) -> std::io::Result<Option<File>> {
        let mut buf = Vec::with_capacity(batch.len() * 512);
        let mut opened: Option<File> = None;
        for entry in batch {
            match entry {
                Entry::Change(c) => frame(&mut buf, &change_record(c)),
                Entry::Ceiling(c) => frame(&mut buf, format!("{{\"ceiling\":{c}}}").as_bytes()),
                Entry::Rotate(path) => {
                    let current = opened.as_mut().unwrap_or(segment);
                    flush(current, &mut buf, &self.segment_bytes)?;
                    opened = Some(create_segment(path)?);
                    self.segment_bytes.store(0, Ordering::Relaxed);
                }
            }
        }
        let current = opened.as_mut().unwrap_or(segment);
        flush(current, &mut buf, &self.segment_bytes)?;
        Ok(opened)
    }
}

/// Writes `buf` to the segment and syncs it.
fn flush(file: &mut File, buf: &mut Vec<u8>, bytes: &AtomicU64) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    file.write_all(buf)?;
    file.sync_data()?;
    bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
    buf.clear();
    Ok(())
}

/// A new, empty segment, its directory entry synced.
pub fn create_segment(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    file.sync_all()?;
    sync_dir(path)?;
    Ok(file)
}

/// Syncs the directory holding `path`, so a created or renamed file's name survives a crash.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// A change as one record: its resourceVersion, type, store and namespace, and the object's
/// JSON as stored.
fn change_record(c: &Change) -> Vec<u8> {
    let object = c.object.unpack();
    let head = serde_json::json!({
        "rv": c.rv,
        "type": c.type_,
        "group": c.store.0,
        "resource": c.store.1,
        "namespace": c.namespace,
    });
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    // `{...}` becomes `{...,"object":<the stored JSON>}`.
    out.pop();
    out.extend_from_slice(b",\"object\":");
    out.extend_from_slice(&object);
    out.push(b'}');
    out
}

/// Appends one frame: payload length and CRC-32 (little-endian), then the payload.
fn frame(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// The payloads of the whole frames in `bytes`, and whether the bytes ended in a partial or
/// damaged frame (a write the crash cut off).
pub fn read_frames(bytes: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((len, crc, payload)) = split_frame(rest) else {
            return (frames, true);
        };
        if crc32(payload) != crc {
            return (frames, true);
        }
        frames.push(payload);
        rest = &rest[8 + len..];
    }
    (frames, false)
}

fn split_frame(bytes: &[u8]) -> Option<(usize, u32, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    Some((len, crc, bytes.get(8..8 + len)?))
}

/// CRC-32 (IEEE 802.3), as zlib and gzip compute it.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = crc_table();
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn frames_read_back_and_a_cut_off_tail_is_noticed() {
        let mut buf = Vec::new();
        frame(&mut buf, b"{\"a\":1}");
        frame(&mut buf, b"{\"b\":2}");
        let (frames, torn) = read_frames(&buf);
        assert_eq!(frames, vec![&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
        assert!(!torn);
        let (frames, torn) = read_frames(&buf[..buf.len() - 3]);
        assert_eq!(frames.len(), 1);
        assert!(torn);
        let mut damaged = buf.clone();
        let last = damaged.len() - 2;
        damaged[last] ^= 0xff;
        let (frames, torn) = read_frames(&damaged);
        assert_eq!((frames.len(), torn), (1, true));
    }
}
