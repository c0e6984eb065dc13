//! `wasi:sockets/tcp`, `wasi:sockets/udp` and `wasi:sockets/udp-create-socket`, every function off the
//! worker. A plugin may not use the network (its WASI context allows no socket and no address), so these
//! calls only ever fail. The other socket interfaces (`network`, `instance-network`,
//! `tcp-create-socket`, `ip-name-lookup`) never block on a runtime and stay wasmtime-wasi's.

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network;
use wasmtime_wasi::p2::bindings::sync::sockets::tcp::{
    self, Duration, InputStream, IpAddressFamily, IpSocketAddress, Network, OutputStream, Pollable,
    ShutdownType, TcpSocket,
};
use wasmtime_wasi::p2::bindings::sync::sockets::udp::{
    self, IncomingDatagram, IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream,
    UdpSocket,
};
use wasmtime_wasi::p2::bindings::sync::sockets::udp_create_socket;
use wasmtime_wasi::sockets::{WasiSocketsCtxView, WasiSocketsView};

use super::{OffWorker, off_worker_impl};
use crate::plugins::instance::PluginState;

/// Adds the wrapped socket interfaces to `linker` (shadowing wasmtime-wasi's).
pub(super) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    tcp::add_to_linker::<PluginState, OffWorkerSockets>(linker, off_worker_sockets)?;
    udp::add_to_linker::<PluginState, OffWorkerSockets>(linker, off_worker_sockets)?;
    udp_create_socket::add_to_linker::<PluginState, OffWorkerSockets>(linker, off_worker_sockets)
}

/// The wrapped sockets of a plugin's store.
fn off_worker_sockets(state: &mut PluginState) -> OffWorker<WasiSocketsCtxView<'_>> {
    OffWorker(state.sockets())
}

/// Selects the wrapped `wasi:sockets` out of a plugin's store.
struct OffWorkerSockets;
impl HasData for OffWorkerSockets {
    type Data<'a> = OffWorker<WasiSocketsCtxView<'a>>;
}

// What the socket interfaces' types need from `wasi:sockets/network`, which stays wasmtime-wasi's: its
// error conversions run as they are (they never block).
impl network::Host for OffWorker<WasiSocketsCtxView<'_>> {
    fn convert_error_code(&mut self, err: SocketError) -> wasmtime::Result<network::ErrorCode> {
        network::Host::convert_error_code(&mut self.0, err)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<network::ErrorCode>> {
        network::Host::network_error_code(&mut self.0, err)
    }
}

impl network::HostNetwork for OffWorker<WasiSocketsCtxView<'_>> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.0, network)
    }
}

impl tcp::Host for OffWorker<WasiSocketsCtxView<'_>> {}

off_worker_impl! {
    impl tcp::HostTcpSocket for WasiSocketsCtxView {
        fn start_bind(
            &mut self,
            socket: Resource<TcpSocket>,
            network: Resource<Network>,
            local_address: IpSocketAddress,
        ) -> Result<(), SocketError>;
        fn finish_bind(&mut self, socket: Resource<TcpSocket>) -> Result<(), SocketError>;
        fn start_connect(
            &mut self,
            socket: Resource<TcpSocket>,
            network: Resource<Network>,
            remote_address: IpSocketAddress,
        ) -> Result<(), SocketError>;
        fn finish_connect(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> Result<(Resource<InputStream>, Resource<OutputStream>), SocketError>;
        fn start_listen(&mut self, socket: Resource<TcpSocket>) -> Result<(), SocketError>;
        fn finish_listen(&mut self, socket: Resource<TcpSocket>) -> Result<(), SocketError>;
        fn accept(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> Result<
            (Resource<TcpSocket>, Resource<InputStream>, Resource<OutputStream>),
            SocketError,
        >;
        fn local_address(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> Result<IpSocketAddress, SocketError>;
        fn remote_address(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> Result<IpSocketAddress, SocketError>;
        fn is_listening(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<bool>;
        fn address_family(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> wasmtime::Result<IpAddressFamily>;
        fn set_listen_backlog_size(
            &mut self,
            socket: Resource<TcpSocket>,
            value: u64,
        ) -> Result<(), SocketError>;
        fn keep_alive_enabled(&mut self, socket: Resource<TcpSocket>) -> Result<bool, SocketError>;
        fn set_keep_alive_enabled(
            &mut self,
            socket: Resource<TcpSocket>,
            value: bool,
        ) -> Result<(), SocketError>;
        fn keep_alive_idle_time(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> Result<Duration, SocketError>;
        fn set_keep_alive_idle_time(
            &mut self,
            socket: Resource<TcpSocket>,
            value: Duration,
        ) -> Result<(), SocketError>;
        fn keep_alive_interval(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> Result<Duration, SocketError>;
        fn set_keep_alive_interval(
            &mut self,
            socket: Resource<TcpSocket>,
            value: Duration,
        ) -> Result<(), SocketError>;
        fn keep_alive_count(&mut self, socket: Resource<TcpSocket>) -> Result<u32, SocketError>;
        fn set_keep_alive_count(
            &mut self,
            socket: Resource<TcpSocket>,
            value: u32,
        ) -> Result<(), SocketError>;
        fn hop_limit(&mut self, socket: Resource<TcpSocket>) -> Result<u8, SocketError>;
        fn set_hop_limit(
            &mut self,
            socket: Resource<TcpSocket>,
            value: u8,
        ) -> Result<(), SocketError>;
        fn receive_buffer_size(&mut self, socket: Resource<TcpSocket>) -> Result<u64, SocketError>;
        fn set_receive_buffer_size(
            &mut self,
            socket: Resource<TcpSocket>,
            value: u64,
        ) -> Result<(), SocketError>;
        fn send_buffer_size(&mut self, socket: Resource<TcpSocket>) -> Result<u64, SocketError>;
        fn set_send_buffer_size(
            &mut self,
            socket: Resource<TcpSocket>,
            value: u64,
        ) -> Result<(), SocketError>;
        fn subscribe(
            &mut self,
            socket: Resource<TcpSocket>,
        ) -> wasmtime::Result<Resource<Pollable>>;
        fn shutdown(
            &mut self,
            socket: Resource<TcpSocket>,
            shutdown_type: ShutdownType,
        ) -> Result<(), SocketError>;
        fn drop(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<()>;
    }
}

impl udp::Host for OffWorker<WasiSocketsCtxView<'_>> {}

off_worker_impl! {
    impl udp::HostUdpSocket for WasiSocketsCtxView {
        fn start_bind(
            &mut self,
            socket: Resource<UdpSocket>,
            network: Resource<Network>,
            local_address: IpSocketAddress,
        ) -> Result<(), SocketError>;
        fn finish_bind(&mut self, socket: Resource<UdpSocket>) -> Result<(), SocketError>;
        fn stream(
            &mut self,
            socket: Resource<UdpSocket>,
            remote_address: Option<IpSocketAddress>,
        ) -> Result<
            (Resource<IncomingDatagramStream>, Resource<OutgoingDatagramStream>),
            SocketError,
        >;
        fn local_address(
            &mut self,
            socket: Resource<UdpSocket>,
        ) -> Result<IpSocketAddress, SocketError>;
        fn remote_address(
            &mut self,
            socket: Resource<UdpSocket>,
        ) -> Result<IpSocketAddress, SocketError>;
        fn address_family(
            &mut self,
            socket: Resource<UdpSocket>,
        ) -> wasmtime::Result<IpAddressFamily>;
        fn unicast_hop_limit(&mut self, socket: Resource<UdpSocket>) -> Result<u8, SocketError>;
        fn set_unicast_hop_limit(
            &mut self,
            socket: Resource<UdpSocket>,
            value: u8,
        ) -> Result<(), SocketError>;
        fn receive_buffer_size(&mut self, socket: Resource<UdpSocket>) -> Result<u64, SocketError>;
        fn set_receive_buffer_size(
            &mut self,
            socket: Resource<UdpSocket>,
            value: u64,
        ) -> Result<(), SocketError>;
        fn send_buffer_size(&mut self, socket: Resource<UdpSocket>) -> Result<u64, SocketError>;
        fn set_send_buffer_size(
            &mut self,
            socket: Resource<UdpSocket>,
            value: u64,
        ) -> Result<(), SocketError>;
        fn subscribe(
            &mut self,
            socket: Resource<UdpSocket>,
        ) -> wasmtime::Result<Resource<Pollable>>;
        fn drop(&mut self, socket: Resource<UdpSocket>) -> wasmtime::Result<()>;
    }
}

off_worker_impl! {
    impl udp::HostIncomingDatagramStream for WasiSocketsCtxView {
        fn receive(
            &mut self,
            stream: Resource<IncomingDatagramStream>,
            max_results: u64,
        ) -> Result<Vec<IncomingDatagram>, SocketError>;
        fn subscribe(
            &mut self,
            stream: Resource<IncomingDatagramStream>,
        ) -> wasmtime::Result<Resource<Pollable>>;
        fn drop(&mut self, stream: Resource<IncomingDatagramStream>) -> wasmtime::Result<()>;
    }
}

off_worker_impl! {
    impl udp::HostOutgoingDatagramStream for WasiSocketsCtxView {
        fn check_send(
            &mut self,
            stream: Resource<OutgoingDatagramStream>,
        ) -> Result<u64, SocketError>;
        fn send(
            &mut self,
            stream: Resource<OutgoingDatagramStream>,
            datagrams: Vec<OutgoingDatagram>,
        ) -> Result<u64, SocketError>;
        fn subscribe(
            &mut self,
            stream: Resource<OutgoingDatagramStream>,
        ) -> wasmtime::Result<Resource<Pollable>>;
        fn drop(&mut self, stream: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()>;
    }
}

off_worker_impl! {
    impl udp_create_socket::Host for WasiSocketsCtxView {
        fn create_udp_socket(
            &mut self,
            address_family: IpAddressFamily,
        ) -> Result<Resource<UdpSocket>, SocketError>;
    }
}
