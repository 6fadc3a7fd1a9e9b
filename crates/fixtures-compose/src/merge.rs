//! Override files merged into the first, as `docker compose -f a.yml -f b.yml` merges them:
//! single values are replaced; `ports`, `expose`, `dns`, `tmpfs`, `cap_add`, `cap_drop`,
//! `env_file` are added to; `environment`, `labels`, `extra_hosts`, `sysctls`, `ulimits`,
//! `depends_on`, `networks` are merged by key and `volumes` by their path in the container;
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

fn service(base: &mut Service, over: Service) {
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
}

fn merge_build(base: &mut Build, over: Build) {
    let Build { context, dockerfile, args, target } = over;
    replace(&mut base.context, context);
    replace(&mut base.dockerfile, dockerfile);
    by_key(&mut base.args.0, args.0);
    replace(&mut base.target, target);
}

fn merge_healthcheck(base: &mut Healthcheck, over: Healthcheck) {
    let Healthcheck { test, interval, timeout, retries, start_period, disable } = over;
    replace(&mut base.test, test);
    replace(&mut base.interval, interval);
    replace(&mut base.timeout, timeout);
    replace(&mut base.retries, retries);
    replace(&mut base.start_period, start_period);
    base.disable |= disable;
}
