//! The Docker build and compose file keep secrets out of images and out of
//! the environment. Docker itself is not needed: the tests read
//! `.dockerignore` and `docker-compose.yml` as Docker reads them.

/// Whether `path` (relative, `/`-separated) is excluded by `.dockerignore`
/// `patterns`, with Docker's rules: a pattern matches the path or one of
/// its parent directories; `*` matches within one segment, `**` any
/// number of segments; a later `!pattern` re-includes.
fn excluded(patterns: &[String], path: &str) -> bool {
    let mut excluded = false;
    for pattern in patterns {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern.as_str()),
        };
        let pattern: Vec<&str> = pattern
            .trim_start_matches("./")
            .trim_matches('/')
            .split('/')
            .collect();
        let segments: Vec<&str> = path.split('/').collect();
        let hit = (1..=segments.len()).any(|n| matches(&pattern, &segments[..n]));
        if hit {
            excluded = !negated;
        }
    }
    excluded
}

fn matches(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            matches(&pattern[1..], path) || (!path.is_empty() && matches(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => segment_matches(p, s) && matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == segment,
        Some((prefix, rest)) => {
            segment.starts_with(prefix)
                && (0..=segment.len() - prefix.len()).any(|skip| {
                    segment
                        .get(prefix.len() + skip..)
                        .is_some_and(|tail| segment_matches(rest, tail))
                })
        }
    }
}

fn dockerignore() -> Vec<String> {
    std::fs::read_to_string(testkit::repo_root().join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_matcher_reads_patterns_as_docker_does() {
    let patterns = ["target", "**/.env", "secrets/", "*.sqlite", "!keep.sqlite"].map(str::to_owned);
    assert!(excluded(&patterns, "target/debug/oms"));
    assert!(excluded(&patterns, ".env"));
    assert!(excluded(&patterns, "infra/.env"));
    assert!(excluded(&patterns, "secrets/admin-password"));
    assert!(excluded(&patterns, "order-svc.sqlite"));
    assert!(!excluded(&patterns, "keep.sqlite"));
    assert!(!excluded(&patterns, "src/main.rs"));
    assert!(
        !excluded(&patterns, "infra/x.sqlite"),
        "* stays in its segment"
    );
}

/// `COPY . .` must not put `.env`, the compose secrets or local data into
/// the build context (and so into the builder layer).
#[test]
fn secrets_and_local_state_are_kept_out_of_the_docker_build_context() {
    let patterns = dockerignore();
    for path in [
        ".env",
        ".env.local",
        "infra/.env",
        "secrets/admin-password",
        "secrets/key-encryption-key",
        "secrets/customer-database-url",
        "data/admin-password",
        "data/key-encryption-key",
        "data/customer-svc.sqlite",
        "customer-svc.sqlite",
        "target/release/oms",
    ] {
        assert!(
            excluded(&patterns, path),
            "{path} is in the build context; .dockerignore: {patterns:?}"
        );
    }
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        "oms/src/main.rs",
        "infra/kafka/pom.xml",
        "schemas/OrderPlaced.v1.schema.json",
    ] {
        assert!(!excluded(&patterns, path), "{path} is needed by the build");
    }
}

/// Compose hands every secret to the services as a file under
/// `/run/secrets` through an `OMS_…_FILE` variable, never as a value in
/// their environment; the files live in `secrets/`, which is not in the
/// build context.
#[test]
fn compose_hands_secrets_to_the_services_as_files() {
    let compose = std::fs::read_to_string(testkit::repo_root().join("docker-compose.yml")).unwrap();
    for secret in [
        "${OMS_ADMIN_PASSWORD",
        "${OMS_KEY_ENCRYPTION_KEY",
        "${OMS_POSTGRES_PASSWORD",
        "_DB_PASSWORD:",
        "${OMS_GRAFANA_ADMIN_PASSWORD",
        "OMS_ADMIN_PASSWORD:",
        "OMS_KEY_ENCRYPTION_KEY:",
        "_DATABASE_URL: postgres://",
    ] {
        assert!(
            !compose.contains(secret),
            "docker-compose.yml puts {secret}… into an environment"
        );
    }
    for variable in [
        "OMS_ADMIN_PASSWORD_FILE: /run/secrets/",
        "OMS_KEY_ENCRYPTION_KEY_FILE: /run/secrets/",
        "OMS_CUSTOMER_DATABASE_URL_FILE: /run/secrets/",
        "OMS_INVENTORY_DATABASE_URL_FILE: /run/secrets/",
        "OMS_ORDER_DATABASE_URL_FILE: /run/secrets/",
        "POSTGRES_PASSWORD_FILE: /run/secrets/",
        "GF_SECURITY_ADMIN_PASSWORD__FILE: /run/secrets/",
    ] {
        assert!(
            compose.contains(variable),
            "no {variable} in docker-compose.yml"
        );
    }
    assert!(compose.contains("\nsecrets:\n"), "no top-level secrets");
    let patterns = dockerignore();
    for line in compose.lines() {
        if let Some(file) = line.trim().strip_prefix("file: ./") {
            assert!(
                excluded(&patterns, file),
                "the secret file {file} would be in the build context"
            );
        }
    }
}
