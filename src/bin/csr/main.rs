//! The client-side-rendered build of the chat UI, built by Trunk (`Trunk.toml`, `index.html`).

fn main() {
    chatkit::mount_csr();
}
