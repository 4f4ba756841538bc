//! The embedded log's partition files: how records and offset markers are
//! framed (length, CRC, body), and the reader that walks a file from an
//! offset, a chunk at a time.

use super::*;

/// Reads one partition file sequentially from an offset, a chunk at a time.
pub(super) struct PartitionReader {
    pub(super) tp: TopicPartition,
    path: PathBuf,
    /// The generation of the file it reads.
    pub(super) generation: u32,
    file: Option<File>,
    /// Next offset to return and the byte position of its frame.
    pub(super) offset: u64,
    pub(super) pos: u64,
    /// The last chunk read, and the file position of its first byte.
    buf: Bytes,
    buf_at: u64,
}

/// The length field of an offset marker frame.
const MARKER: u32 = u32::MAX;
/// An offset marker frame's length, header included.
const MARKER_LEN: usize = FRAME_HEADER + 8;

/// The length of the frame at the start of `b` (header included), if its
/// header is there.
fn frame_len(b: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    if len == MARKER {
        return (b.len() >= FRAME_HEADER).then_some(MARKER_LEN);
    }
    (b.len() >= FRAME_HEADER).then_some(FRAME_HEADER + len as usize)
}

/// Appends a record's frame.
pub(super) fn put_frame(w: &mut Writer, record: &Record) {
    let start = w.len();
    w.put_u32(0);
    w.put_u32(0);
    record.encode(w);
    let body = &w.as_slice()[start + FRAME_HEADER..];
    let (len, crc) = (body.len() as u32, crc32fast::hash(body));
    w.patch_u32(start, len);
    w.patch_u32(start + 4, crc);
}

/// Appends an offset marker: the next record's offset is `offset`.
pub(super) fn put_marker(w: &mut Writer, offset: u64) {
    let bytes = offset.to_le_bytes();
    w.put_u32(MARKER);
    w.put_u32(crc32fast::hash(&bytes));
    for b in bytes {
        w.put_u8(b);
    }
}

impl PartitionReader {
    pub(super) fn new(log: &EmbeddedLog, tp: TopicPartition, offset: u64) -> Result<Self, LogError> {
        // Open the file of the generation the seek points are for; a
        // compaction by another process may have replaced it: catch up, retry.
        let mut retried = false;
        let (generation, path, file, start_offset, start_pos) = loop {
            let state = log.read_state();
            let p = state.partition(&tp)?;
            let i = p.seek_points.partition_point(|&(o, _)| o <= offset);
            let (start_offset, start_pos) = p.seek_points.get(i.wrapping_sub(1)).copied().unwrap_or((0, 0));
            let path = log.partition_path(&tp.topic, tp.partition, p.generation);
            match File::open(&path) {
                Ok(file) => break (p.generation, path, file, start_offset, start_pos),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !retried => {
                    drop(state);
                    log.refresh()?;
                    retried = true;
                }
                Err(e) => return Err(io("open", &path)(e)),
            }
        };
        let mut reader = PartitionReader {
            tp,
            path,
            generation,
            file: Some(file),
            offset: start_offset,
            pos: start_pos,
            buf: Bytes::new(),
            buf_at: 0,
        };
        // Skip forward from the commit point to the requested offset.
        while reader.offset < offset {
            let limit = match log.read_state().partition(&reader.tp)? {
                p if p.generation == generation => p.end_bytes,
                // Compacted meanwhile: start over on the new file.
                _ => return PartitionReader::new(log, reader.tp, offset),
            };
            let before = reader.offset;
            reader.read(usize::MAX, limit, offset, &mut Vec::new())?;
            if reader.offset == before {
                break;
            }
        }
        Ok(reader)
    }

    fn corrupt(&self, at: u64, detail: impl Into<String>) -> LogError {
        LogError::Corrupt { path: self.path.clone(), at, detail: detail.into() }
    }

    /// Reads up to `max` records below byte `limit` (the committed end),
    /// stopping before the first record at offset `until` or later.
    pub(super) fn read(
        &mut self,
        max: usize,
        limit: u64,
        until: u64,
        out: &mut Vec<LogRecord>,
    ) -> Result<(), LogError> {
        self.visit(max, limit, until, |offset, view, buf, _| {
            out.push(LogRecord { offset, record: Record::from_view(view, buf) });
        })
    }

    /// [`PartitionReader::read`], each record handed to `visit` with its
    /// offset as a view into the read buffer (also given), and its whole
    /// frame as stored: a reader that needs a record's key only (compaction
    /// deciding whether to run) makes no record of it, and one that copies
    /// records (compaction) copies their frames.
    pub(super) fn visit(
        &mut self,
        max: usize,
        limit: u64,
        until: u64,
        mut visit: impl FnMut(u64, &eddy_codec::RecordView<'_>, &Bytes, &[u8]),
    ) -> Result<(), LogError> {
        let mut n = 0;
        while n < max && self.pos < limit && self.offset < until {
            let rel = self.pos.wrapping_sub(self.buf_at) as usize;
            let whole = self.pos >= self.buf_at
                && rel <= self.buf.len()
                && frame_len(&self.buf[rel..]).is_some_and(|len| rel + len <= self.buf.len());
            if !whole {
                self.fill(limit)?;
                continue;
            }
            let len = frame_len(&self.buf[rel..]).expect("checked above");
            let crc = u32::from_le_bytes(self.buf[rel + 4..rel + 8].try_into().expect("4 bytes"));
            let body = &self.buf[rel + FRAME_HEADER..rel + len];
            if crc32fast::hash(body) != crc {
                return Err(self.corrupt(self.pos, "frame checksum mismatch"));
            }
            if len == MARKER_LEN && self.buf[rel..rel + 4] == MARKER.to_le_bytes() {
                self.offset = u64::from_le_bytes(body.try_into().expect("8 bytes"));
                self.pos += len as u64;
                continue;
            }
            let view = Reader::new(body).record().map_err(|e| self.corrupt(self.pos, e.to_string()))?;
            visit(self.offset, &view, &self.buf, &self.buf[rel..rel + len]);
            self.offset += 1;
            self.pos += len as u64;
            n += 1;
        }
        Ok(())
    }

    /// Reads the next chunk from `pos`: up to [`READ_CHUNK`] bytes, more if
    /// one frame is larger, never past `limit`.
    fn fill(&mut self, limit: u64) -> Result<(), LogError> {
        let avail = limit - self.pos;
        let mut data = self.read_at(avail.min(READ_CHUNK as u64))?;
        match frame_len(&data) {
            Some(len) if len as u64 > avail => return Err(self.corrupt(self.pos, "frame runs past the committed end")),
            Some(len) if len > data.len() => data = self.read_at(len as u64)?,
            Some(_) => {}
            None => return Err(self.corrupt(self.pos, "frame header runs past the committed end")),
        }
        self.buf = Bytes::from(data);
        self.buf_at = self.pos;
        Ok(())
    }

    fn read_at(&mut self, want: u64) -> Result<Vec<u8>, LogError> {
        if self.file.is_none() {
            self.file = Some(File::open(&self.path).map_err(io("open", &self.path))?);
        }
        let file = self.file.as_mut().expect("opened above");
        file.seek(SeekFrom::Start(self.pos)).map_err(io("seek", &self.path))?;
        let mut data = Vec::with_capacity(want as usize);
        file.take(want).read_to_end(&mut data).map_err(io("read", &self.path))?;
        if (data.len() as u64) < want {
            return Err(self.corrupt(self.pos + data.len() as u64, "the file is shorter than its committed length"));
        }
        Ok(data)
    }
}
