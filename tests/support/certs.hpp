// A throwaway CA and a server certificate for 127.0.0.1 and localhost, made with the openssl
// command-line tool, for HTTPS tests.
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>

namespace testing {

// Writes ca.pem, server.pem and server.key for 127.0.0.1 and localhost into `dir`.
inline bool make_certificates(const std::string& dir) {
  std::ofstream(dir + "/ext.cnf") << "basicConstraints=CA:FALSE\n"
                                     "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  std::string d = "'" + dir + "'";
  std::string script =
      "cd " + d + " && " +
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout ca.key -out ca.pem -days 2 -subj '/CN=agentburn test CA' "
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
      "&& openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout server.key -out server.csr -subj '/CN=127.0.0.1' "
      "&& openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 2 -extfile ext.cnf";
  return std::system((script + " > openssl.log 2>&1").c_str()) == 0;
}


}  // namespace testing
