"""Readable names for the sign classes: the dataset's ASCII slugs -> Vietnamese display names.

The label set is QCVN 41 signs from the Vietnamese dashcam dataset; slugs are what the model
files carry, these names are what a driver reads (drawing the diacritics needs a TrueType font).
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["DISPLAY_NAMES", "display_name"]

DISPLAY_NAMES = MappingProxyType(
    {
        "bat-dau-duong-cao-toc": "Bắt đầu đường cao tốc",
        "bat-dau-khu-dong-dan-cu": "Bắt đầu khu đông dân cư",
        "cac-xe-chi-duoc-di-thang": "Các xe chỉ được đi thẳng",
        "cac-xe-chi-duoc-re-trai": "Các xe chỉ được rẽ trái",
        "cam-di-nguoc-chieu": "Cấm đi ngược chiều",
        "cam-do-xe": "Cấm đỗ xe",
        "cam-dung-xe-va-do-xe": "Cấm dừng xe và đỗ xe",
        "cam-oto": "Cấm ô tô",
        "cam-oto-quay-dau-xe": "Cấm ô tô quay đầu xe",
        "cam-oto-re-phai": "Cấm ô tô rẽ phải",
        "cam-oto-re-trai": "Cấm ô tô rẽ trái",
        "cam-quay-dau-xe": "Cấm quay đầu xe",
        "cam-re-phai": "Cấm rẽ phải",
        "cam-re-trai": "Cấm rẽ trái",
        "cam-re-trai-va-re-phai": "Cấm rẽ trái và rẽ phải",
        "cam-su-dung-coi": "Cấm sử dụng còi",
        "cam-vuot": "Cấm vượt",
        "duong-nguoi-di-bo-sang-ngang-1": "Đường người đi bộ sang ngang",
        "het-cam-vuot": "Hết cấm vượt",
        "het-han-che-toc-do-toi-da": "Hết hạn chế tốc độ tối đa",
        "het-khu-dong-dan-cu": "Hết khu đông dân cư",
        "het-tat-ca-cac-lenh-cam": "Hết tất cả các lệnh cấm",
        "huong-phai-di-vong-chuong-ngai-vat-1": "Hướng phải đi vòng chướng ngại vật",
        "ket-thuc-duong-cao-toc": "Kết thúc đường cao tốc",
        "noi-giao-nhau-chay-theo-vong-xuyen": "Nơi giao nhau chạy theo vòng xuyến",
        "toc-do-toi-da-100": "Tốc độ tối đa 100 km/h",
        "toc-do-toi-da-50": "Tốc độ tối đa 50 km/h",
        "toc-do-toi-da-60": "Tốc độ tối đa 60 km/h",
        "toc-do-toi-da-70": "Tốc độ tối đa 70 km/h",
        "toc-do-toi-da-80": "Tốc độ tối đa 80 km/h",
        "toc-do-toi-da-cho-phep": "Tốc độ tối đa cho phép",
        "toc-do-toi-thieu-60": "Tốc độ tối thiểu 60 km/h",
        "toc-do-toi-thieu-cho-phep": "Tốc độ tối thiểu cho phép",
    }
)


def display_name(slug: str) -> str:
    """The Vietnamese name of a class slug; an unknown slug (another dataset) is returned as is."""
    return DISPLAY_NAMES.get(slug, slug)
