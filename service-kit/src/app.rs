//! Assembling and running a service.
//!
//! ```text
//! ServiceBuilder::start::<Migrator>(settings, topics)   database migrated, topics created, relay running
//!     .consume("saga", &[Topic::Orders], handler)?     a consumer group per handler
//!     .serve(api_router, title, description).await?   HTTP bound (port 0 works): an App
//! App::run_until_stopped()                             until the shutdown token is cancelled
//! ```
//!
//! Every background task and the HTTP server share one shutdown token; the
//! [`App`] waits for all of them, so a stopped service has committed its
//! consumer offsets and left no task behind.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use event_runtime::kafka::{TopicsError, ensure_topics_retaining};
use event_runtime::{
    ConsumerHealth, ConsumerSettings, EventConsumer, EventHandler, KafkaSettings, Outbox,
    OutboxRelay, RelayHealth, RelaySettings, Retention,
};
use events::Topic;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::jwt::JwksAuthenticator;
use crate::auth::{Authenticator, SharedAuthenticator};
use crate::database::{FileLock, connect_and_migrate};
use crate::health::{self, Probes};
use crate::settings::ServiceSettings;
use crate::{http, openapi};

/// A service being assembled; see the [module docs](self).
pub struct ServiceBuilder {
    settings: ServiceSettings,
    db: DatabaseConnection,
    kafka: KafkaSettings,
    outbox: Outbox,
    shutdown: CancellationToken,
    tasks: Vec<(String, JoinHandle<()>)>,
    authenticator: SharedAuthenticator,
    database_lock: Option<FileLock>,
    relay_health: RelayHealth,
    consumer_health: Vec<ConsumerHealth>,
}

impl ServiceBuilder {
    /// Connects the database and applies `M`'s migrations, creates `topics`
    /// (and their dead-letter topics) if missing, and starts the outbox relay.
    ///
    /// A broker that cannot be reached is waited for, with a warning every
    /// few seconds, until it answers (stop the process to give up).
    ///
    /// # Errors
    /// When the database is unreachable or a migration fails; at once, with
    /// one line naming the property, when the Kafka client configuration is
    /// refused (an unknown `OMS_KAFKA_*` property, an unsupported
    /// `security.protocol`, an unreadable `OMS_KAFKA_*_FILE`).
    pub async fn start<M: MigratorTrait>(
        settings: ServiceSettings,
        topics: &[Topic],
    ) -> anyhow::Result<Self> {
        let database =
            connect_and_migrate::<M>(&settings.database_url(), &settings.common.database()).await?;
        let db = database.connection;
        let kafka = settings.common.checked_kafka()?;
        wait_for_topics(&kafka, topics, settings.common.dead_letter_retention()).await?;
        let outbox = Outbox::new(settings.name);
        let shutdown = CancellationToken::new();
        let relay_settings = RelaySettings {
            stall_after: settings.common.stall_after(),
            delete_published: settings.common.outbox_retention_hours == 0,
            ..RelaySettings::default()
        };
        let relay = OutboxRelay::new(db.clone(), &kafka, &outbox, relay_settings)?;
        let authenticator = SharedAuthenticator(Arc::new(
            JwksAuthenticator::new(settings.common.jwks_url.clone())
                .refresh_every(settings.common.jwks_refresh()),
        ));
        let mut builder = Self {
            settings,
            db,
            kafka,
            outbox,
            shutdown,
            tasks: Vec::new(),
            authenticator,
            database_lock: database.lock,
            relay_health: relay.health(),
            consumer_health: Vec::new(),
        };
        let token = builder.shutdown.clone();
        builder.spawn("outbox-relay", relay.run_until_stopped(token));
        let retention = Retention::new(builder.db.clone(), builder.settings.common.retention());
        let token = builder.shutdown.clone();
        builder.spawn("retention", retention.run_until_stopped(token));
        Ok(builder)
    }

    /// The service's database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The service's outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The Kafka settings.
    pub fn kafka(&self) -> &KafkaSettings {
        &self.kafka
    }

    /// The token that stops everything.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Uses `authenticator` for the [`Caller`](crate::Caller) extractor
    /// instead of the default: tokens verified with the keys at `OMS_JWKS_URL`.
    pub fn authenticator(&mut self, authenticator: Arc<dyn Authenticator>) -> &mut Self {
        self.authenticator = SharedAuthenticator(authenticator);
        self
    }

    /// The service's name, e.g. `inventory-svc`.
    pub fn service_name(&self) -> &'static str {
        self.settings.name
    }

    /// The consumer group of this service's consumer `name`:
    /// `<prefix><service>.<name>`.
    pub fn consumer_group(&self, name: &str) -> String {
        format!(
            "{}{}.{name}",
            self.kafka.topics.prefix(),
            self.settings.name
        )
    }

    /// Starts a consumer of `topics` applying `handler`, in the consumer
    /// group `<prefix><service>.<name>`, de-duplicating as `<name>`.
    ///
    /// # Errors
    /// When the consumer cannot be created or subscribed.
    pub fn consume<H: EventHandler>(
        &mut self,
        name: &str,
        topics: &[Topic],
        handler: H,
    ) -> anyhow::Result<&mut Self> {
        self.consume_with(name, topics, handler, Mode::Deduplicate)
    }

    /// Starts a consumer whose handler decides every event by the state it
    /// keeps, so that a record delivered again (a rebalance, a relay's
    /// retry, an operator's replay) or the same event published again under
    /// a new id changes nothing: the saga's participants (one record per
    /// order, never deleted, that every later event of the order finds) and
    /// the saga itself (an order moves only forward, and its timeline keeps
    /// each event id once). It writes no inbox row: for these handlers the
    /// row would repeat what their own state already says, at a write per
    /// event and eight days of rows.
    ///
    /// # Errors
    /// When the consumer cannot be created or subscribed.
    pub fn consume_by_state<H: EventHandler>(
        &mut self,
        name: &str,
        topics: &[Topic],
        handler: H,
    ) -> anyhow::Result<&mut Self> {
        self.consume_with(name, topics, handler, Mode::WithoutInbox)
    }

    /// Starts a consumer that keeps a projection: like
    /// [`consume`](Self::consume) but without inbox de-duplication, so that
    /// replaying its topics rebuilds the projection. Its handler must be
    /// idempotent by itself.
    ///
    /// # Errors
    /// When the consumer cannot be created or subscribed.
    pub fn project<H: EventHandler>(
        &mut self,
        name: &str,
        topics: &[Topic],
        handler: H,
    ) -> anyhow::Result<&mut Self> {
        self.consume_with(name, topics, handler, Mode::WithoutInbox)
    }

    /// Starts a projection that only rebuilds: like
    /// [`project`](Self::project), but it applies only records an operator
    /// re-drove (`oms replay --copy-to`), and skips live traffic before
    /// decoding it. For projections the hot path already writes itself.
    ///
    /// # Errors
    /// When the consumer cannot be created or subscribed.
    pub fn rebuild_from_replays<H: EventHandler>(
        &mut self,
        name: &str,
        topics: &[Topic],
        handler: H,
    ) -> anyhow::Result<&mut Self> {
        self.consume_with(name, topics, handler, Mode::RebuildFromReplays)
    }

    fn consume_with<H: EventHandler>(
        &mut self,
        name: &str,
        topics: &[Topic],
        handler: H,
        mode: Mode,
    ) -> anyhow::Result<&mut Self> {
        let group = self.consumer_group(name);
        let mut settings = ConsumerSettings::new(group, topics);
        settings.inbox_name = name.to_owned();
        settings.deduplicate = mode == Mode::Deduplicate;
        settings.replayed_only = mode == Mode::RebuildFromReplays;
        settings.stall_after = self.settings.common.stall_after();
        let consumer = EventConsumer::new(
            self.db.clone(),
            &self.kafka,
            self.outbox.clone(),
            settings,
            handler,
        )?;
        self.consumer_health.push(consumer.health());
        let token = self.shutdown.clone();
        self.spawn(
            &format!("consumer {name}"),
            consumer.run_until_stopped(token),
        );
        Ok(self)
    }

    /// Runs a service-specific background task; it must end when the
    /// shutdown token is cancelled.
    pub fn spawn(
        &mut self,
        name: &str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> &mut Self {
        self.tasks.push((name.to_owned(), tokio::spawn(task)));
        self
    }

    /// Binds the HTTP listener and serves `api` plus the operations routes,
    /// `/openapi.json` and `/docs`.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn serve(
        mut self,
        api: OpenApiRouter,
        title: &str,
        description: &str,
    ) -> anyhow::Result<App> {
        let probes = Probes::new(self.db.clone(), &self.kafka, self.settings.name)?
            .with_relay(self.relay_health.clone())
            .with_consumers(self.consumer_health.clone());
        let (router, document) = api.merge(health::router(probes)).split_for_parts();
        let document = openapi::finish(document, title, description);
        let router = http::with_common_layers(
            router.merge(openapi::docs_router(document)),
            self.settings.common.http_body_limit_bytes,
            self.authenticator.clone(),
            crate::extract::ClientIpHeader::new(self.settings.common.client_ip_header.as_deref())?,
        );
        let listener = tokio::net::TcpListener::bind(self.settings.http_addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.settings.http_addr))?;
        let address = listener.local_addr()?;
        let token = self.shutdown.clone();
        let limits = self.settings.common.server_limits();
        self.spawn(
            "http",
            crate::server::serve(listener, router, limits, token),
        );
        tracing::info!(service = self.settings.name, %address, "listening");
        Ok(App {
            name: self.settings.name,
            port: address.port(),
            db: self.db,
            shutdown: self.shutdown,
            tasks: self.tasks,
            database_lock: self.database_lock,
        })
    }
}

/// Creates the topics, waiting for a broker that cannot be reached yet
/// (saying so every few seconds); a configuration error ends the wait at once.
async fn wait_for_topics(
    kafka: &KafkaSettings,
    topics: &[Topic],
    dead_letter_retention: Duration,
) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        match ensure_topics_retaining(kafka, topics, dead_letter_retention).await {
            Ok(()) => return Ok(()),
            Err(TopicsError::Configuration(error)) => return Err(error.into()),
            Err(error) => {
                let error = format!("{error:#}");
                tracing::warn!(
                    error,
                    bootstrap = kafka.bootstrap_servers,
                    waited_secs = started.elapsed().as_secs(),
                    "waiting for Kafka at {}; retrying (Ctrl-C stops)",
                    kafka.bootstrap_servers
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// A running service.
pub struct App {
    name: &'static str,
    port: u16,
    db: DatabaseConnection,
    shutdown: CancellationToken,
    tasks: Vec<(String, JoinHandle<()>)>,
    /// Released only after the pool is closed, when the App is dropped.
    database_lock: Option<FileLock>,
}

impl App {
    /// The HTTP port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Cancel it to stop the service.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until every task has ended. A task that ends before shutdown
    /// was requested stops the whole service and is reported as an error.
    ///
    /// # Errors
    /// When a task ended early or panicked.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut failed = Vec::new();
        let mut pending: Vec<_> = self
            .tasks
            .into_iter()
            .map(|(name, handle)| Box::pin(async move { (name, handle.await) }))
            .collect();
        while !pending.is_empty() {
            let ((name, result), _, rest) = futures::future::select_all(pending).await;
            pending = rest;
            let early = !self.shutdown.is_cancelled();
            match result {
                Err(error) => failed.push(format!("{name} panicked: {error}")),
                Ok(()) if early => failed.push(format!("{name} stopped unexpectedly")),
                Ok(()) => {}
            }
            if early {
                tracing::error!(
                    service = self.name,
                    task = name,
                    "task ended before shutdown; stopping the service"
                );
                self.shutdown.cancel();
            }
        }
        self.db.clone().close().await.ok();
        drop(self.database_lock);
        tracing::info!(service = self.name, "stopped");
        anyhow::ensure!(failed.is_empty(), "{}: {}", self.name, failed.join("; "));
        Ok(())
    }

    /// Requests shutdown and waits for it.
    ///
    /// # Errors
    /// As [`run_until_stopped`](Self::run_until_stopped).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.run_until_stopped().await
    }
}

/// How a consumer treats what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Effects once per event, through the inbox.
    Deduplicate,
    /// A handler idempotent by itself (it decides by the state it keeps,
    /// or it is a projection that never goes back in time): no inbox.
    WithoutInbox,
    /// An idempotent projection that applies replayed records only.
    RebuildFromReplays,
}
