// Dropping privileges after start-up (RELIABILITY.md, least privilege): once EAL has mapped its
// memory and the ports, rings, sockets and files are open, the dataplane needs no capability. Each
// thread that handles input drops all of them: the main thread (command socket, exports, event
// channel, file store) after Dataplane::Init, and every worker at the start of its loop.
// Capabilities are per thread in Linux; EAL's own interrupt and service threads keep theirs.
//
// Threads: the calling thread only. Never blocks; a failure is reported, not fatal (a process
// without capabilities to begin with has nothing to drop).
#pragma once

#include <string>

namespace vigil::dp {

// Clears the calling thread's ambient, bounding, inheritable, permitted and effective capability
// sets and sets no_new_privs. Returns "" or what failed.
std::string DropThreadCapabilities();

// The calling thread's effective capability set, low and high words (tests, logs).
unsigned long long EffectiveCapabilities();

}  // namespace vigil::dp
