//! The input lines of `inspect --jsonl`, read in place: the lines are handed out as slices of
//! one reused buffer, so a 20 KB line is not copied out of a reader's buffer into a line
//! buffer first, and one `read` brings in several lines.

use std::io::{self, Read};

use super::MAX_LINE_BYTES;

/// Bytes asked for per `read`; the buffer grows past this only for a longer line (up to
/// [`MAX_LINE_BYTES`] and one more byte, to tell that a line is too long).
const READ_BYTES: usize = 1 << 18;

/// One input line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A line of at most [`MAX_LINE_BYTES`] bytes, without its `\n`.
    Complete(&'a [u8]),
    /// A longer line; it was skipped.
    TooLong,
}

/// Splits `input` into lines.
pub(crate) struct Lines<R> {
    input: R,
    /// Zero-filled once; the data read is `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Lines<R> {
    /// Lines of `input`, which is read in large blocks (no need to buffer it).
    pub(crate) fn new(input: R) -> Self {
        Lines {
            input,
            buf: vec![0; READ_BYTES],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The next line, `None` at the end of the input. A last line without `\n` counts; an empty
    /// input has no line.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        // Bytes after `start` already known to hold no `\n`.
        let mut searched = 0;
        loop {
            let from = self.start + searched;
            if let Some(p) = memchr::memchr(b'\n', &self.buf[from..self.end]) {
                let line = self.start..from + p;
                self.start = line.end + 1;
                return Ok(Some(self.line(line)));
            }
            searched = self.end - self.start;
            if searched > MAX_LINE_BYTES {
                self.skip_line()?;
                return Ok(Some(Line::TooLong));
            }
            if self.eof {
                if searched == 0 {
                    return Ok(None);
                }
                let line = self.start..self.end;
                self.start = self.end;
                return Ok(Some(self.line(line)));
            }
            self.fill()?;
        }
    }

    /// The input read but not yet handed out (it may end inside a line).
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Hands out the first `n` bytes of [`Self::pending`] without a search: the caller found a
    /// line's end there itself (and `n` counts its `\n`).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    fn line(&self, range: std::ops::Range<usize>) -> Line<'_> {
        if range.len() > MAX_LINE_BYTES {
            Line::TooLong
        } else {
            Line::Complete(&self.buf[range])
        }
    }

    /// Drops the rest of the current line, its `\n` included.
    fn skip_line(&mut self) -> io::Result<()> {
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                self.start += p + 1;
                return Ok(());
            }
            self.start = self.end;
            if self.eof {
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// Reads more: the pending part of a line moves to the front first, and the buffer doubles
    /// when that part fills it.
    fn fill(&mut self) -> io::Result<()> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.end == self.buf.len() {
            self.buf.resize(2 * self.buf.len(), 0);
        }
        let n = loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.eof = n == 0;
        self.end += n;
        Ok(())
    }
}

/// A reader that hands out its bytes (`.0`) at most `.1` at a time, like a pipe.
#[cfg(test)]
pub(super) struct Trickle<'a>(pub(super) &'a [u8], pub(super) usize);

#[cfg(test)]
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], step: usize) -> Vec<Option<Vec<u8>>> {
        let mut lines = Lines::new(Trickle(input, step));
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().unwrap_or(None) {
            got.push(match line {
                Line::Complete(l) => Some(l.to_vec()),
                Line::TooLong => None,
            });
        }
        got
    }

    #[test]
    fn splits_like_lines_of_a_buf_read() {
        let long = vec![b'x'; MAX_LINE_BYTES];
        let mut input = Vec::new();
        for (i, len) in [0, 1, 5, 300_000, 70_000, 0, 2].into_iter().enumerate() {
            input.extend((0..len).map(|j| b'a' + ((i + j) % 26) as u8));
            input.push(b'\n');
        }
        input.extend_from_slice(&long);
        input.push(b'\n');
        input.extend_from_slice(b"last");
        let want: Vec<Option<Vec<u8>>> = input
            .split(|&b| b == b'\n')
            .map(|l| Some(l.to_vec()))
            .collect();
        for step in [1 << 20, READ_BYTES, 65_536, 4_093, 7] {
            assert_eq!(lines(&input, step), want, "{step}");
        }
        assert_eq!(lines(b"", 7), Vec::<Option<Vec<u8>>>::new());
        assert_eq!(lines(b"\n", 7), vec![Some(vec![])]);
        assert_eq!(lines(b"a\n", 7), vec![Some(b"a".to_vec())]);
    }

    #[test]
    fn overlong_lines_are_skipped_to_their_end() {
        let mut input = b"a\n".to_vec();
        input.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES + 1));
        input.extend_from_slice(b"\nb\n");
        input.extend(std::iter::repeat_n(b'z', 3 * MAX_LINE_BYTES));
        for step in [1 << 21, 65_536, 99_991] {
            assert_eq!(
                lines(&input, step),
                vec![Some(b"a".to_vec()), None, Some(b"b".to_vec()), None],
                "{step}"
            );
        }
    }
}
