#include "dataplane/app/privileges.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vigil::dp {

std::string DropThreadCapabilities() {
  std::string failed;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    failed += "ambient: " + std::string(std::strerror(errno)) + "; ";
  }
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes with the rest below.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
        errno != EPERM) {
      failed += "bounding " + std::to_string(cap) + ": " + std::strerror(errno) + "; ";
    }
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    failed += "no_new_privs: " + std::string(std::strerror(errno)) + "; ";
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) {
    failed += "capset: " + std::string(std::strerror(errno));
  }
  return failed;
}

unsigned long long EffectiveCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return ~0ull;
  return (static_cast<unsigned long long>(data[1].effective) << 32) | data[0].effective;
}

}  // namespace vigil::dp
