//! The runtime floor: the same component called through wasmtime's component API directly, with no
//! dispatch layer (no pool, no per-call budget, no `HookCall` matching, no error classification). One
//! store and one instance for the whole run; the typed functions are looked up once.

use super::wit;
use crate::{logic, payload};
use anyhow::Context;
use chathooks::plugins::bindings::types::{Conversation, Decision, Draft, EventContext, Message};
use chathooks::plugins::bindings::{WIT_VERSION, kv, log};
use chathooks::store::kv::KvStore;
use std::path::Path;
use wasmtime::component::{Component, HasData, Linker, ResourceTable, TypedFunc};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The namespace the bare host gives the plugin's KV keys.
const NAMESPACE: &str = "bare";

/// The host side of `kv` and `log`, directly on the store's data.
struct Host {
    kv: KvStore,
}

impl kv::Host for Host {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, kv::Error> {
        self.kv.get(NAMESPACE, &key).map_err(storage)
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), kv::Error> {
        self.kv
            .set(NAMESPACE, &key, &value, ttl_ms)
            .map_err(storage)
    }

    fn delete(&mut self, key: String) -> Result<bool, kv::Error> {
        self.kv.delete(NAMESPACE, &key).map_err(storage)
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, kv::Error> {
        self.kv.list_keys(NAMESPACE, &prefix).map_err(storage)
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, kv::Error> {
        self.kv
            .compare_and_swap(NAMESPACE, &key, expected.as_deref(), new.as_deref())
            .map_err(storage)
    }

    fn increment(&mut self, key: String, delta: i64) -> Result<i64, kv::Error> {
        self.kv.increment(NAMESPACE, &key, delta).map_err(storage)
    }
}

impl log::Host for Host {
    fn log(&mut self, _level: log::Level, _message: String) {}
}

fn storage(e: chathooks::store::kv::KvError) -> kv::Error {
    kv::Error::Storage(e.to_string())
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    host: Host,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct HostData;
impl HasData for HostData {
    type Data<'a> = &'a mut Host;
}

type BeforeFn = TypedFunc<(&'static Draft, &'static Conversation), (Decision,)>;
type AfterFn =
    TypedFunc<(EventContext, &'static Message, &'static Conversation), (Result<(), String>,)>;

/// A loaded component with its two hooks bound, and the event's arguments.
pub struct Bare {
    store: Store<State>,
    before: BeforeFn,
    after: AfterFn,
    draft: &'static Draft,
    conversation: &'static Conversation,
    context: EventContext,
    message: &'static Message,
}

impl Bare {
    /// Compiles and instantiates `wasm` on an engine configured like the runtime's (component model,
    /// epoch interruption, pooling allocator).
    pub fn load(wasm: &Path) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(
                PoolingAllocationConfig::new(),
            ));
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, wasm)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        kv::add_to_linker::<State, HostData>(&mut linker, |s| &mut s.host)?;
        log::add_to_linker::<State, HostData>(&mut linker, |s| &mut s.host)?;
        let state = State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            host: Host {
                kv: KvStore::open_in_memory()?,
            },
        };
        let mut store = Store::new(&engine, state);
        // No ticker runs on this engine, so the epoch never advances: one deadline covers the whole run.
        store.set_epoch_deadline(1);
        let instance = linker.instantiate(&mut store, &component)?;
        let export = |store: &mut Store<State>, iface: &str, func: &str| {
            let iface_index = instance
                .get_export_index(
                    &mut *store,
                    None,
                    &format!("chathooks:plugin/{iface}@{WIT_VERSION}"),
                )
                .with_context(|| format!("the component does not export {iface}"))?;
            instance
                .get_export_index(&mut *store, Some(&iface_index), func)
                .with_context(|| format!("{iface} has no function {func}"))
        };
        let before_index = export(&mut store, "before-message-sent", "before-message-sent")?;
        let after_index = export(&mut store, "after-message-sent", "after-message-sent")?;
        let before: BeforeFn = instance.get_typed_func(&mut store, before_index)?;
        let after: AfterFn = instance.get_typed_func(&mut store, after_index)?;
        // The arguments live for the whole run: leaked once so the typed functions can borrow them.
        let (draft, conversation) = wit::before_parts(&payload::sample_before());
        let (context, message, _) = wit::after_parts(&payload::sample_after(0));
        Ok(Bare {
            store,
            before,
            after,
            draft: Box::leak(Box::new(draft)),
            conversation: Box::leak(Box::new(conversation)),
            context,
            message: Box::leak(Box::new(message)),
        })
    }

    /// One event: the before-hook, then the after-hook with event id `event_id`.
    pub fn event(&mut self, event_id: u64) -> anyhow::Result<()> {
        self.before_only()?;
        self.after_only(event_id)
    }

    /// The before-hook alone.
    pub fn before_only(&mut self) -> anyhow::Result<()> {
        let (decision,) = self
            .before
            .call(&mut self.store, (self.draft, self.conversation))?;
        if !matches!(decision, Decision::Modify(_)) {
            anyhow::bail!("the before-hook did not mask the message: {decision:?}");
        }
        Ok(())
    }

    /// The after-hook alone, with event id `event_id`.
    pub fn after_only(&mut self, event_id: u64) -> anyhow::Result<()> {
        let context = EventContext {
            event_id,
            ..self.context
        };
        let (done,) = self
            .after
            .call(&mut self.store, (context, self.message, self.conversation))?;
        done.map_err(anyhow::Error::msg)
    }

    /// The counter the after-hook bumped (to check that the work was done).
    pub fn counter(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let key = logic::counter_key(&self.message.conversation_id);
        Ok(self.store.data().host.kv.get(NAMESPACE, &key)?)
    }
}
