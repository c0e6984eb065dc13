//! `wasi:filesystem/types`, every function off the worker. A plugin has no preopened directory, so it
//! holds no descriptor and these calls only ever fail; `wasi:filesystem/preopens` (the empty list) never
//! blocks and stays wasmtime-wasi's.

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    self, Advice, Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry,
    DirectoryEntryStream, ErrorCode, Filesize, MetadataHashValue, NewTimestamp, OpenFlags,
    PathFlags,
};
use wasmtime_wasi::p2::bindings::sync::io::streams::{Error, InputStream, OutputStream};
use wasmtime_wasi::p2::{FsError, FsResult};

use super::{OffWorker, off_worker_impl};
use crate::plugins::instance::PluginState;

/// Adds the wrapped `wasi:filesystem/types` to `linker` (shadowing wasmtime-wasi's).
pub(super) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    types::add_to_linker::<PluginState, OffWorkerFilesystem>(linker, |state| {
        OffWorker(state.filesystem())
    })
}

/// Selects the wrapped `wasi:filesystem` out of a plugin's store.
struct OffWorkerFilesystem;
impl HasData for OffWorkerFilesystem {
    type Data<'a> = OffWorker<WasiFilesystemCtxView<'a>>;
}

off_worker_impl! {
    impl types::Host for WasiFilesystemCtxView {
        fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode>;
        fn filesystem_error_code(
            &mut self,
            err: Resource<Error>,
        ) -> wasmtime::Result<Option<ErrorCode>>;
    }
}

off_worker_impl! {
    impl types::HostDescriptor for WasiFilesystemCtxView {
        fn advise(
            &mut self,
            fd: Resource<Descriptor>,
            offset: Filesize,
            len: Filesize,
            advice: Advice,
        ) -> FsResult<()>;
        fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()>;
        fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags>;
        fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType>;
        fn set_size(&mut self, fd: Resource<Descriptor>, size: Filesize) -> FsResult<()>;
        fn set_times(
            &mut self,
            fd: Resource<Descriptor>,
            atim: NewTimestamp,
            mtim: NewTimestamp,
        ) -> FsResult<()>;
        fn read(
            &mut self,
            fd: Resource<Descriptor>,
            len: Filesize,
            offset: Filesize,
        ) -> FsResult<(Vec<u8>, bool)>;
        fn write(
            &mut self,
            fd: Resource<Descriptor>,
            buf: Vec<u8>,
            offset: Filesize,
        ) -> FsResult<Filesize>;
        fn read_directory(
            &mut self,
            fd: Resource<Descriptor>,
        ) -> FsResult<Resource<DirectoryEntryStream>>;
        fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()>;
        fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()>;
        fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat>;
        fn stat_at(
            &mut self,
            fd: Resource<Descriptor>,
            path_flags: PathFlags,
            path: String,
        ) -> FsResult<DescriptorStat>;
        fn set_times_at(
            &mut self,
            fd: Resource<Descriptor>,
            path_flags: PathFlags,
            path: String,
            atim: NewTimestamp,
            mtim: NewTimestamp,
        ) -> FsResult<()>;
        fn link_at(
            &mut self,
            fd: Resource<Descriptor>,
            old_path_flags: PathFlags,
            old_path: String,
            new_descriptor: Resource<Descriptor>,
            new_path: String,
        ) -> FsResult<()>;
        fn open_at(
            &mut self,
            fd: Resource<Descriptor>,
            path_flags: PathFlags,
            path: String,
            oflags: OpenFlags,
            flags: DescriptorFlags,
        ) -> FsResult<Resource<Descriptor>>;
        fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()>;
        fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String>;
        fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()>;
        fn rename_at(
            &mut self,
            fd: Resource<Descriptor>,
            old_path: String,
            new_fd: Resource<Descriptor>,
            new_path: String,
        ) -> FsResult<()>;
        fn symlink_at(
            &mut self,
            fd: Resource<Descriptor>,
            src_path: String,
            dest_path: String,
        ) -> FsResult<()>;
        fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()>;
        fn read_via_stream(
            &mut self,
            fd: Resource<Descriptor>,
            offset: Filesize,
        ) -> FsResult<Resource<InputStream>>;
        fn write_via_stream(
            &mut self,
            fd: Resource<Descriptor>,
            offset: Filesize,
        ) -> FsResult<Resource<OutputStream>>;
        fn append_via_stream(
            &mut self,
            fd: Resource<Descriptor>,
        ) -> FsResult<Resource<OutputStream>>;
        fn is_same_object(
            &mut self,
            a: Resource<Descriptor>,
            b: Resource<Descriptor>,
        ) -> wasmtime::Result<bool>;
        fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue>;
        fn metadata_hash_at(
            &mut self,
            fd: Resource<Descriptor>,
            path_flags: PathFlags,
            path: String,
        ) -> FsResult<MetadataHashValue>;
    }
}

off_worker_impl! {
    impl types::HostDirectoryEntryStream for WasiFilesystemCtxView {
        fn read_directory_entry(
            &mut self,
            stream: Resource<DirectoryEntryStream>,
        ) -> FsResult<Option<DirectoryEntry>>;
        fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()>;
    }
}
