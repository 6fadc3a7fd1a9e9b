//! Override files merged into the first, as `docker compose -f a.yml -f b.yml` merges them:
//! single values are replaced; `ports`, `expose`, `dns`, `tmpfs`, `cap_add`, `cap_drop`,
//! `env_file`, `devices`, `group_add`, `security_opt`, `dns_search`, `dns_opt` are added to;
//! `secrets` and `configs` are merged by source; `environment`, `labels`, `extra_hosts`, `sysctls`, `ulimits`,
//! `depends_on`, `networks`, `links` are merged by key and `volumes` by their path in the container;
//! `build` and `healthcheck` are merged key by key.

use std::collections::BTreeMap;

use crate::model::{Build, File, Healthcheck, Service};

/// Merges `over` into `base`.
pub(crate) fn file(base: &mut File, over: File) {
    if over.name.is_some() {
        base.name = over.name;
    }
    for (name, service) in over.services {
        match base.services.get_mut(&name) {
            Some(existing) => self::service(existing, service),
            None => {
                base.services.insert(name, service);
            }
        }
    }
    base.networks.extend(over.networks);
    base.volumes.extend(over.volumes);
    base.secrets.extend(over.secrets);
    base.configs.extend(over.configs);
    base.include.extend(over.include);
}

fn replace<T>(base: &mut Option<T>, over: Option<T>) {
    if over.is_some() {
        *base = over;
    }
}

fn append<T: PartialEq>(base: &mut Vec<T>, over: Vec<T>) {
    for item in over {
        if !base.contains(&item) {
            base.push(item);
        }
    }
}

fn by_key<V>(base: &mut BTreeMap<String, V>, over: BTreeMap<String, V>) {
    base.extend(over);
}

pub(crate) fn service(base: &mut Service, over: Service) {
    let Service {
        image,
        build,
        command,
        entrypoint,
        environment,
        env_file,
        ports,
        expose,
        volumes,
        tmpfs,
        networks,
        network_mode,
        depends_on,
        healthcheck,
        labels,
        user,
        working_dir,
        hostname,
        dns,
        extra_hosts,
        cap_add,
        cap_drop,
        privileged,
        read_only,
        init,
        stop_signal,
        stop_grace_period,
        shm_size,
        mem_limit,
        cpus,
        ulimits,
        sysctls,
        profiles,
        dns_search,
        dns_opt,
        mem_reservation,
        pids_limit,
        container_name,
        restart,
        secrets,
        configs,
        platform,
        stdin_open,
        tty,
        pull_policy,
        links,
        extends,
        pid,
        ipc,
        devices,
        group_add,
        security_opt,
        gpus,
    } = over;
    replace(&mut base.image, image);
    match (&mut base.build, build) {
        (Some(b), Some(o)) => merge_build(b, o),
        (b, o) => replace(b, o),
    }
    replace(&mut base.command, command);
    replace(&mut base.entrypoint, entrypoint);
    by_key(&mut base.environment, environment);
    append(&mut base.env_file, env_file);
    append(&mut base.ports, ports);
    append(&mut base.expose, expose);
    for v in volumes {
        base.volumes.retain(|b| b.target() != v.target());
        base.volumes.push(v);
    }
    append(&mut base.tmpfs, tmpfs);
    match (&mut base.networks, networks) {
        (Some(b), Some(o)) => by_key(b, o),
        (b, o) => replace(b, o),
    }
    replace(&mut base.network_mode, network_mode);
    by_key(&mut base.depends_on, depends_on);
    match (&mut base.healthcheck, healthcheck) {
        (Some(b), Some(o)) => merge_healthcheck(b, o),
        (b, o) => replace(b, o),
    }
    by_key(&mut base.labels, labels);
    replace(&mut base.user, user);
    replace(&mut base.working_dir, working_dir);
    replace(&mut base.hostname, hostname);
    append(&mut base.dns, dns);
    by_key(&mut base.extra_hosts, extra_hosts);
    append(&mut base.cap_add, cap_add);
    append(&mut base.cap_drop, cap_drop);
    replace(&mut base.privileged, privileged);
    replace(&mut base.read_only, read_only);
    replace(&mut base.init, init);
    replace(&mut base.stop_signal, stop_signal);
    replace(&mut base.stop_grace_period, stop_grace_period);
    replace(&mut base.shm_size, shm_size);
    replace(&mut base.mem_limit, mem_limit);
    replace(&mut base.cpus, cpus);
    by_key(&mut base.ulimits, ulimits);
    by_key(&mut base.sysctls, sysctls);
    replace(&mut base.profiles, profiles);
    append(&mut base.dns_search, dns_search);
    append(&mut base.dns_opt, dns_opt);
    replace(&mut base.mem_reservation, mem_reservation);
    replace(&mut base.pids_limit, pids_limit);
    replace(&mut base.container_name, container_name);
    replace(&mut base.restart, restart);
    for secret in secrets {
        base.secrets.retain(|b| b.source != secret.source);
        base.secrets.push(secret);
    }
    for config in configs {
        base.configs.retain(|b| b.source != config.source);
        base.configs.push(config);
    }
    replace(&mut base.platform, platform);
    replace(&mut base.stdin_open, stdin_open);
    replace(&mut base.tty, tty);
    replace(&mut base.pull_policy, pull_policy);
    by_key(&mut base.links, links);
    replace(&mut base.extends, extends);
    replace(&mut base.pid, pid);
    replace(&mut base.ipc, ipc);
    append(&mut base.devices, devices);
    append(&mut base.group_add, group_add);
    append(&mut base.security_opt, security_opt);
    base.gpus |= gpus;
}

fn merge_build(base: &mut Build, over: Build) {
    let Build { context, dockerfile, dockerfile_inline, args, target, labels, no_cache, .. } = over;
    replace(&mut base.context, context);
    replace(&mut base.dockerfile, dockerfile);
    replace(&mut base.dockerfile_inline, dockerfile_inline);
    by_key(&mut base.args.0, args.0);
    replace(&mut base.target, target);
    by_key(&mut base.labels.0, labels.0);
    replace(&mut base.no_cache, no_cache);
}

fn merge_healthcheck(base: &mut Healthcheck, over: Healthcheck) {
    let Healthcheck { test, interval, timeout, retries, start_period, start_interval, disable } = over;
    replace(&mut base.test, test);
    replace(&mut base.interval, interval);
    replace(&mut base.timeout, timeout);
    replace(&mut base.retries, retries);
    replace(&mut base.start_period, start_period);
    replace(&mut base.start_interval, start_interval);
    base.disable |= disable;
}
