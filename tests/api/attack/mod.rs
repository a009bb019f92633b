//! Attacks on the real binary, by someone who does not know the webhook
//! secret: bad settings, huge and slow bodies, floods of bad signatures, odd
//! paths and methods. Each test starts `ghsync serve` as a child process (as
//! the crash test does) so that memory, file descriptors and log output are
//! the process's own.

mod answers;
mod floods;
mod heads;
mod memory;
mod server;
mod settings;
