// Boost.JSON's implementation, compiled once: every other file includes only its headers.
#include <boost/json/src.hpp>
