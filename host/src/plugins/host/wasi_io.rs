//! WASI's `wasi:io/poll` and `wasi:io/streams` as wasmtime-wasi implements them, with every function
//! that blocks on a runtime made off the async worker ([`crate::blocking::off_worker`]).
//!
//! wasmtime-wasi's synchronous WASI runs those functions' futures with `Handle::block_on` (its
//! `in_tokio`): a guest writing to stderr (as a Rust guest does when it panics), flushing, polling or
//! dropping a stream. On a worker running blocking work in place that panics, so each of them hands
//! the worker's tasks over first; the others (a non-blocking write, a subscribe) run as they are. With
//! these two interfaces wrapped, a plugin that imports no other WASI interface that blocks on a runtime
//! (sockets, files: [`calls_in_place`]) can be called in place, saving the hand-over on a send's path
//! (BENCHMARKS.md, problem 29).

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::sync::io::poll::{self, Pollable};
use wasmtime_wasi::p2::bindings::sync::io::streams::{self, InputStream, OutputStream};
use wasmtime_wasi::p2::{StreamError, StreamResult};

use crate::blocking::off_worker;
use crate::plugins::instance::PluginState;

/// The WASI interfaces whose every function runs without blocking on a runtime once `wasi:io` is
/// wrapped here (clocks and randomness answer at once; the CLI's streams are `wasi:io`'s), and this
/// package's own interfaces.
const IN_PLACE_IMPORTS: &[&str] = &[
    "chathooks:plugin/",
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
];

/// Whether every import of a component named in `imports` is one whose calls may run on a worker in
/// place: none of WASI's sockets or files, whose synchronous functions block on a runtime unwrapped.
pub(crate) fn calls_in_place<'a>(mut imports: impl Iterator<Item = &'a str>) -> bool {
    imports.all(|name| {
        IN_PLACE_IMPORTS
            .iter()
            .any(|prefix| name.starts_with(prefix))
    })
}

/// Replaces `wasi:io/poll` and `wasi:io/streams` in `linker` (after `add_to_linker_sync`) with the
/// wrapped versions.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = poll::add_to_linker::<PluginState, OffWorkerIo>(linker, off_worker_io)
        .and_then(|()| streams::add_to_linker::<PluginState, OffWorkerIo>(linker, off_worker_io));
    linker.allow_shadowing(false);
    added
}

/// The wrapped `wasi:io` of a plugin's store: its resource table.
fn off_worker_io(state: &mut PluginState) -> OffWorker<'_> {
    OffWorker(state.ctx().table)
}

/// Selects the wrapped `wasi:io` out of a plugin's store.
struct OffWorkerIo;
impl HasData for OffWorkerIo {
    type Data<'a> = OffWorker<'a>;
}

/// A plugin's resource table, whose `wasi:io` functions that block on a runtime run off the worker.
struct OffWorker<'a>(&'a mut ResourceTable);

impl poll::Host for OffWorker<'_> {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> wasmtime::Result<Vec<u32>> {
        off_worker(|| poll::Host::poll(self.0, pollables))
    }
}

impl poll::HostPollable for OffWorker<'_> {
    fn ready(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<bool> {
        off_worker(|| poll::HostPollable::ready(self.0, pollable))
    }

    fn block(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        off_worker(|| poll::HostPollable::block(self.0, pollable))
    }

    fn drop(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.0, pollable)
    }
}

impl streams::Host for OffWorker<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.0, err)
    }
}

impl streams::HostOutputStream for OffWorker<'_> {
    fn drop(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<()> {
        off_worker(|| streams::HostOutputStream::drop(self.0, stream))
    }

    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        off_worker(|| streams::HostOutputStream::blocking_write_and_flush(self.0, stream, bytes))
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        off_worker(|| {
            streams::HostOutputStream::blocking_write_zeroes_and_flush(self.0, stream, len)
        })
    }

    fn subscribe(
        &mut self,
        stream: Resource<OutputStream>,
    ) -> wasmtime::Result<Resource<Pollable>> {
        streams::HostOutputStream::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        off_worker(|| streams::HostOutputStream::blocking_flush(self.0, stream))
    }

    fn splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        off_worker(|| streams::HostOutputStream::blocking_splice(self.0, dst, src, len))
    }
}

impl streams::HostInputStream for OffWorker<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        off_worker(|| streams::HostInputStream::drop(self.0, stream))
    }

    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.0, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        off_worker(|| streams::HostInputStream::blocking_read(self.0, stream, len))
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        off_worker(|| streams::HostInputStream::blocking_skip(self.0, stream, len))
    }

    fn subscribe(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<Resource<Pollable>> {
        streams::HostInputStream::subscribe(self.0, stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plugins_without_sockets_or_files_are_called_in_place() {
        let rust_guest = [
            "chathooks:plugin/types@0.3.0",
            "chathooks:plugin/kv@0.3.0",
            "wasi:io/poll@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:cli/stderr@0.2.6",
            "wasi:clocks/monotonic-clock@0.2.6",
            "wasi:random/random@0.2.6",
        ];
        assert!(calls_in_place(rust_guest.into_iter()));
        for other in [
            "wasi:filesystem/types@0.2.6",
            "wasi:sockets/tcp@0.2.0",
            "wasi:sockets/udp-create-socket@0.2.6",
            "wasi:http/outgoing-handler@0.2.6",
        ] {
            let imports = rust_guest.iter().copied().chain([other]);
            assert!(!calls_in_place(imports), "{other}");
        }
    }
}
