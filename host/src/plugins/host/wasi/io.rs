//! `wasi:io/poll` and `wasi:io/streams`, on every plugin's path (its stdout and stderr): the functions
//! that block on a runtime (a blocking write or flush, a poll, a stream's drop) run off the worker, the
//! others (a non-blocking write, a subscribe) as they are.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::sync::io::poll::{self, Pollable};
use wasmtime_wasi::p2::bindings::sync::io::streams::{self, InputStream, OutputStream};
use wasmtime_wasi::p2::{StreamError, StreamResult};

use super::OffWorker;
use crate::blocking::off_worker;
use crate::plugins::instance::PluginState;

/// Adds the wrapped `wasi:io/poll` and `wasi:io/streams` to `linker` (shadowing wasmtime-wasi's).
pub(super) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    poll::add_to_linker::<PluginState, OffWorkerIo>(linker, off_worker_io)?;
    streams::add_to_linker::<PluginState, OffWorkerIo>(linker, off_worker_io)
}

/// The wrapped `wasi:io` of a plugin's store: its resource table.
fn off_worker_io(state: &mut PluginState) -> OffWorker<&mut ResourceTable> {
    OffWorker(state.ctx().table)
}

/// Selects the wrapped `wasi:io` out of a plugin's store.
struct OffWorkerIo;
impl HasData for OffWorkerIo {
    type Data<'a> = OffWorker<&'a mut ResourceTable>;
}

impl poll::Host for OffWorker<&mut ResourceTable> {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> wasmtime::Result<Vec<u32>> {
        off_worker(|| poll::Host::poll(self.0, pollables))
    }
}

impl poll::HostPollable for OffWorker<&mut ResourceTable> {
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

impl streams::Host for OffWorker<&mut ResourceTable> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.0, err)
    }
}

impl streams::HostOutputStream for OffWorker<&mut ResourceTable> {
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

impl streams::HostInputStream for OffWorker<&mut ResourceTable> {
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
