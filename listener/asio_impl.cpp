// Asio's implementation, compiled once for the whole program (BOOST_ASIO_SEPARATE_COMPILATION),
// with its OpenSSL stream for WebSockets over TLS.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
