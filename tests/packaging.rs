//! The Dockerfile and the Kubernetes manifests refer only to things that exist: files it copies, the
//! binary name, ports and config paths that match the configs it ships, and configs that validate.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Dockerfile instructions as (keyword, arguments), comments and blank lines dropped.
fn instructions() -> Vec<(String, String)> {
    read("Dockerfile")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_ascii_uppercase(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn dockerfile_copies_only_what_exists_and_dockerignore_keeps_it() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.trim().trim_end_matches('/').to_owned())
        .collect();
    let mut copies = 0;
    for (keyword, args) in instructions() {
        if keyword != "COPY" || args.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            copies += 1;
            assert!(
                Path::new(ROOT).join(source).exists(),
                "COPY {source}: no such path"
            );
            let top = source.split('/').next().unwrap();
            assert!(
                !ignored.iter().any(|i| i == top),
                "COPY {source} is excluded by .dockerignore"
            );
        }
    }
    assert!(copies >= 4);
}

#[test]
fn dockerfile_copies_every_workspace_member() {
    let cargo = read("Cargo.toml");
    let members = cargo
        .lines()
        .find_map(|l| l.strip_prefix("members = "))
        .expect("a workspace members list");
    let copied: Vec<String> = instructions()
        .into_iter()
        .filter(|(k, _)| k == "COPY")
        .map(|(_, v)| v)
        .collect();
    for member in members.trim_matches(['[', ']']).split(',') {
        let member = member.trim().trim_matches('"');
        if member == "." {
            continue;
        }
        assert!(
            copied.iter().any(|c| c == &format!("{member} ./{member}")),
            "the Dockerfile does not copy workspace member {member}"
        );
    }
}

#[test]
fn dockerfile_names_match_the_crate_and_its_config() {
    let cargo = read("Cargo.toml");
    let all = instructions();
    let get = |k: &str| -> Vec<String> {
        all.iter()
            .filter(|(kw, _)| kw == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert!(
        cargo.contains("name = \"wsgate\"\npath = \"src/main.rs\""),
        "the binary is named wsgate"
    );
    assert!(get("RUN")[0].contains("cargo build --release --locked --bin wsgate"));
    assert!(get("COPY")
        .iter()
        .any(|c| c == "--from=build /src/target/release/wsgate /usr/local/bin/wsgate"));
    assert_eq!(get("ENTRYPOINT"), ["[\"/usr/local/bin/wsgate\"]"]);
    assert!(get("CMD")[0].contains("\"/etc/wsgate/wsgate.yaml\""));
    assert!(get("COPY")
        .iter()
        .any(|c| c == "config/docker.yaml /etc/wsgate/wsgate.yaml"));
    assert_eq!(get("STOPSIGNAL"), ["SIGTERM"]);
    let user = &get("USER")[0];
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "runs as {user}"
    );
    assert_eq!(get("FROM").len(), 2, "multi-stage");

    // The exposed ports are the ones the shipped container config binds.
    let config = wsgate::Config::load(&Path::new(ROOT).join("config/docker.yaml")).unwrap();
    let mut bound: Vec<u16> = config.listeners.iter().map(|l| l.bind.port()).collect();
    bound.push(config.admin.as_ref().unwrap().bind.port());
    let exposed: Vec<u16> = get("EXPOSE")[0]
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(exposed, bound);
    assert!(config
        .listeners
        .iter()
        .all(|l| l.bind.ip().is_unspecified()));
    assert!(config.admin.unwrap().bind.ip().is_unspecified());
}

fn manifest(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn kubernetes_manifests_agree_with_wsgate() {
    let configmap = manifest("deploy/kubernetes/configmap.yaml");
    let yaml = configmap["data"]["wsgate.yaml"].as_str().unwrap();
    let config = wsgate::Config::from_yaml(yaml).unwrap_or_else(|e| panic!("{:?}", e.messages()));
    let admin = config
        .admin
        .as_ref()
        .expect("probes need the admin listener");
    assert!(
        admin.bind.ip().is_unspecified(),
        "admin must bind 0.0.0.0 for probes and scrapers"
    );

    let deployment = manifest("deploy/kubernetes/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(
        grace > config.shutdown.drain_timeout.as_secs() + pre_stop,
        "terminationGracePeriodSeconds {grace} must exceed drain_timeout + preStop"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let port = |name: &str| {
        container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].as_u64().unwrap() as u16)
            .unwrap()
    };
    assert_eq!(port("admin"), admin.bind.port());
    assert_eq!(port("ws"), config.listeners[0].bind.port());
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(container["resources"]["requests"].is_mapping());
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["prometheus.io/port"],
        admin.bind.port().to_string().as_str()
    );
    // The args point at the mounted ConfigMap.
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[..2], ["--config", "/etc/wsgate/wsgate.yaml"]);
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/wsgate");
}
