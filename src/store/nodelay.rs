//! sqlx 0.9.0 opens PostgreSQL connections without `TCP_NODELAY` (a regression:
//! transact-rs/sqlx#4335; the fix, #4336, is merged but not released). With
//! Nagle's algorithm on, a message longer than one TCP segment — a group of
//! webhook payloads — sends its last part only when the server acknowledges the
//! rest, and the server delays that acknowledgement by ~40 ms: ingest fell to
//! ~450 deliveries/s. sqlx does not hand out its socket, so after each connect
//! we set the option on every TCP socket of ours whose peer is the database's
//! port. Remove this once sqlx sets it again.

/// Sets `TCP_NODELAY` on this process's TCP sockets connected to `port`.
pub fn set_nodelay_towards(port: u16) {
    #[cfg(target_os = "linux")]
    {
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return };
        for fd in fds.flatten().filter_map(|e| e.file_name().to_str()?.parse::<libc::c_int>().ok()) {
            if peer_port(fd) == Some(port) {
                let one: libc::c_int = 1;
                // SAFETY: setsockopt reads `one` for the given length; on an fd that is not
                // (or no longer) a TCP socket it fails with an error, which changes nothing.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        (&one as *const libc::c_int).cast(),
                        size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = port;
}

#[cfg(target_os = "linux")]
fn peer_port(fd: libc::c_int) -> Option<u16> {
    // SAFETY: an all-zero sockaddr_storage is valid; getpeername writes at most `len` bytes
    // into it and fails on an fd that is not a connected socket.
    let (storage, len) = unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let done = libc::getpeername(fd, (&mut storage as *mut libc::sockaddr_storage).cast(), &mut len);
        (done == 0).then_some((storage, len))?
    };
    let port = match libc::c_int::from(storage.ss_family) {
        // SAFETY: the family says which sockaddr type the kernel wrote, and `len` covers it.
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => unsafe {
            (*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()).sin_port
        },
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => unsafe {
            (*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()).sin6_port
        },
        _ => return None,
    };
    Some(u16::from_be(port))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nodelay(stream: &std::net::TcpStream) -> bool {
        stream.nodelay().unwrap()
    }

    #[test]
    fn only_sockets_towards_the_port_get_nodelay() {
        let db = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to_db = std::net::TcpStream::connect(db.local_addr().unwrap()).unwrap();
        let to_other = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!nodelay(&to_db) && !nodelay(&to_other), "Nagle is on by default");

        set_nodelay_towards(db.local_addr().unwrap().port());

        assert!(nodelay(&to_db), "the socket towards the database's port has TCP_NODELAY");
        assert!(!nodelay(&to_other), "others are left alone");
    }
}
