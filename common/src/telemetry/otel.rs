//! The OTLP trace exporter, from the standard environment variables (OpenTelemetry
//! specification, "SDK environment variables" and "OTLP exporter configuration"):
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): unset, no
//!   traces at all. Read by the exporter itself; for `http/protobuf` it appends `/v1/traces`.
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` (or `…_TRACES_PROTOCOL`): `grpc` or `http/protobuf`,
//!   read here (see [`protocol_from`] for the default and why).
//! - `OTEL_SERVICE_NAME`: overrides the binary's own name; `OTEL_RESOURCE_ATTRIBUTES` adds
//!   to it (the SDK's resource detectors).
//! - `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
//!   `OTEL_BSP_EXPORT_TIMEOUT`: the batch span processor reads them itself
//!   (`BatchConfigBuilder::default`, opentelemetry_sdk 0.33).
//! - `OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT`: the exporter reads them itself.
//! - `OTEL_SDK_DISABLED=true`: no traces, whatever the endpoint.

use anyhow::Context;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];
const PROTOCOL_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"];

/// The OTLP transports this build speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// The protocol a `OTEL_EXPORTER_OTLP_PROTOCOL` value names. Unset (or empty): `grpc`, the
/// port 4317 that the collector, Jaeger and this project's compose file expose, so that
/// setting the endpoint alone works there (the specification's default is `http/protobuf`:
/// set it when the endpoint is a 4318 one). An unknown value (`http/json`, which this build
/// does not speak, or a typo) is an error rather than a silent guess.
pub fn protocol_from(value: Option<&str>) -> anyhow::Result<Protocol> {
    match value.map(str::trim).filter(|value| !value.is_empty()) {
        None => Ok(Protocol::Grpc),
        Some(value) if value.eq_ignore_ascii_case("grpc") => Ok(Protocol::Grpc),
        Some(value) if value.eq_ignore_ascii_case("http/protobuf") => Ok(Protocol::HttpProtobuf),
        Some(other) => anyhow::bail!("OTEL_EXPORTER_OTLP_PROTOCOL={other} is not one of grpc, http/protobuf"),
    }
}

fn first_set(vars: &[&str]) -> Option<String> {
    vars.iter().find_map(|var| std::env::var(var).ok().filter(|value| !value.trim().is_empty()))
}

/// The tracer provider, or `None` when no endpoint is configured (traces off). Also
/// installs the W3C TraceContext propagator globally.
pub(super) fn provider(default_service_name: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"));
    if disabled || first_set(&ENDPOINT_VARS).is_none() {
        return Ok(None);
    }
    let protocol = protocol_from(first_set(&PROTOCOL_VARS).as_deref())?;
    let exporter = match protocol {
        Protocol::Grpc => SpanExporter::builder().with_tonic().build(),
        Protocol::HttpProtobuf => {
            SpanExporter::builder().with_http().with_protocol(opentelemetry_otlp::Protocol::HttpBinary).build()
        }
    }
    .with_context(|| format!("building the OTLP exporter ({protocol:?})"))?;
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| default_service_name.to_owned());
    let resource = Resource::builder().with_service_name(service_name).build();
    let provider = SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build();
    // Only W3C Trace Context (`traceparent`, `tracestate`): what the API documents and the
    // factory sends. A composite, so that baggage can be added later in one place.
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![Box::new(
        TraceContextPropagator::new(),
    )]));
    Ok(Some(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_variable_picks_the_transport() {
        assert_eq!(protocol_from(Some("grpc")).unwrap(), Protocol::Grpc);
        assert_eq!(protocol_from(Some("http/protobuf")).unwrap(), Protocol::HttpProtobuf);
        assert_eq!(protocol_from(Some(" HTTP/Protobuf ")).unwrap(), Protocol::HttpProtobuf);
        assert_eq!(protocol_from(None).unwrap(), Protocol::Grpc);
        assert_eq!(protocol_from(Some("")).unwrap(), Protocol::Grpc);
    }

    #[test]
    fn an_unknown_protocol_is_an_error_that_names_the_variable() {
        let err = protocol_from(Some("http/json")).unwrap_err().to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/json"), "{err}");
    }
}
