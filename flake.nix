{
  description = "fixtures: container test fixtures for Rust (development shell)";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, rust-overlay, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs {
          inherit system;
          overlays = [ (import rust-overlay) ];
        };
        # The toolchain the project is built and tested with, with the target of the
        # static test-services binary.
        rust = pkgs.rust-bin.stable."1.95.0".default.override {
          extensions = [ "rust-src" "clippy" "rustfmt" ];
          targets = [ "x86_64-unknown-linux-gnu" ];
        };
      in
      {
        devShells.default = pkgs.mkShell {
          packages = [
            rust
            pkgs.cargo-nextest
            pkgs.docker-client
            pkgs.podman
            pkgs.pkgsStatic.busybox  # a static busybox for the image with a shell
            pkgs.docker-distribution # the registry `fetch` is tested against
            pkgs.glibc.static        # for the crt-static test-services binary
            pkgs.file
          ];
        };
      });
}
